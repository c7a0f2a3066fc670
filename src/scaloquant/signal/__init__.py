"""Pure numpy signal helpers: axes and the FFT/ppm convention, lineshapes, resampling."""
