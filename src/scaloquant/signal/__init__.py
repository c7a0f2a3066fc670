"""Pure numpy signal helpers: the FFT/ppm convention (:mod:`.axes`), the sampling grid
(:mod:`.grid`), lineshapes, data matched to a grid (:mod:`.match`), the quality figures and
flags (:mod:`.quality`, whose docstring maps the modules of their measures), the main peak
(:mod:`.peaks`), residual water by HLSVD (:mod:`.water`), the signal per
proton (:mod:`.scale`) and the band decimation of the fit's model (:mod:`.decimate`)."""
