"""The report's PNGs: the tight box found without savefig's layout pass, and the maps drawn on
one reused figure, each the same bytes as matplotlib's own way."""

import io

import numpy as np

from scaloquant.report.figures import MapImage, map_pngs, plot_map, png_bytes


def _savefig_tight(fig, dpi):
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def _maps():
    rng = np.random.default_rng(0)
    v = rng.uniform(0, 12, (9, 7))
    nan = v.copy()
    nan[0, 0] = np.nan
    return [
        MapImage(v, "tNAA", "mM", v > 10),  # crosses, then none on the next map
        MapImage(v * 1e-5, "tCr", "amplitude", None),
        MapImage(np.full(v.shape, 2.5), "tCho/tCr", "/tCr", np.zeros(v.shape, bool)),
        MapImage(nan, "a longer title/tCr", "/tCr", v > 6),
        MapImage(np.full(v.shape, np.nan), "Glx", "mM", np.ones(v.shape, bool)),
        MapImage(rng.uniform(0, 1, (4, 4)), "another shape", "mM", None),
        MapImage(v * 1e6, "tNAA", "amplitude", v > 3),  # back to the first shape's figure
    ]


def test_png_bytes_are_savefig_tight_bytes():
    """png_bytes' box (no layout pass for a figure placed already) is savefig's tight box."""
    for m in _maps():
        kwargs = {"title": m.title, "unit": m.unit, "mask": m.mask}
        assert png_bytes(plot_map(m.values, **kwargs), dpi=100) == _savefig_tight(
            plot_map(m.values, **kwargs), 100
        )


def test_maps_on_a_reused_figure_are_each_map_drawn_alone():
    """Nothing of one map (crosses, colour range, title, unit) is left on the next."""
    maps = _maps()
    alone = [
        png_bytes(plot_map(m.values, title=m.title, unit=m.unit, mask=m.mask), dpi=100)
        for m in maps
    ]
    reused = map_pngs(maps, dpi=100)
    assert [a == b for a, b in zip(alone, reused, strict=True)] == [True] * len(maps)
    assert len(set(reused)) == len(maps)
