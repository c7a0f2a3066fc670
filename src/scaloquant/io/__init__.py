"""File IO: the only code that touches files or vendor conventions."""
