"""What every explorer shares: the lazy ipywidgets import, figures as PNG images, and setting
controls from code without each change firing a redraw."""

from __future__ import annotations

import io

__all__ = ["DPI", "image", "new_figure", "observe", "png", "set_quietly", "widgets_module"]


def widgets_module():
    """``ipywidgets``, with the install command in the error when it is missing."""
    try:
        import ipywidgets
    except ImportError as err:  # optional at import time of sftmix, needed here
        raise ImportError("the sftmix explorers need ipywidgets: pip install ipywidgets") from err
    return ipywidgets


#: Figures are rendered at twice the 72-px-per-inch scale they are shown at, so they stay
#: sharp on high-density screens; :func:`image` fixes the shown width.
DPI = 144
_SHOWN_PX_PER_INCH = 72


def png(fig, dpi: int = DPI) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def image(w, figsize):
    """An Image widget shown at the figure's size (not stretched to the output's width)."""
    width = int(figsize[0] * _SHOWN_PX_PER_INCH * 1.35)
    return w.Image(format="png", layout=w.Layout(width="100%", max_width=f"{width}px", height="auto"))


def new_figure(figsize):
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained")  # never registered with pyplot


def set_quietly(explorer, settings) -> None:
    """Set controls from code without each change firing a redraw (the caller redraws once)."""
    explorer._busy = True
    try:
        for control, value in settings:
            if value is not None and control.value != value:
                control.value = value
    finally:
        explorer._busy = False


def observe(explorer, controls, callback) -> None:
    """Call ``callback()`` when any control changes, unless the explorer is setting them itself."""
    for control in controls:
        control.observe(lambda change: None if explorer._busy else callback(), names="value")
