"""Pure numpy signal helpers: the FFT/ppm convention (:mod:`.axes`), the sampling grid
(:mod:`.grid`), lineshapes, data matched to a grid (:mod:`.match`), quality figures and the main
peak (:mod:`.quality`, :mod:`.peaks`), residual water by HLSVD (:mod:`.water`), the signal per
proton (:mod:`.scale`) and the band decimation of the fit's model (:mod:`.decimate`)."""
