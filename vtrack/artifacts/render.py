"""In-memory objects as artifact bytes: dicts (YAML/JSON), figures (matplotlib, plotly), images.

numpy, Pillow, matplotlib and plotly are never imported here at module level; figures
are recognised by their type's module or by duck typing.
"""

from __future__ import annotations

import io
import json
import os
from typing import Any

from vtrack.errors import MissingDependencyError, ValidationError

_PLOTS_HINT = "pip install 'vtrack[plots]'"


def is_yaml(path: str) -> bool:
    """True for a ``.yaml`` or ``.yml`` file name."""
    return path.lower().endswith((".yaml", ".yml"))


def dict_bytes(dictionary: Any, artifact_file: str) -> bytes:
    """``dictionary`` as YAML (``.yaml``/``.yml``) or else as JSON, keys in their order.

    Raises ValidationError for values the format cannot hold.
    """
    try:
        if is_yaml(artifact_file):
            import yaml

            text = yaml.safe_dump(
                dictionary, default_flow_style=False, sort_keys=False, allow_unicode=True
            )
        else:
            text = json.dumps(dictionary, indent=2, ensure_ascii=False) + "\n"
    except (TypeError, ValueError) as e:
        raise ValidationError(f"cannot write {artifact_file!r}: {e}", path=artifact_file) from e
    except Exception as e:  # yaml.YAMLError (yaml is imported lazily here)
        raise ValidationError(f"cannot write {artifact_file!r}: {e}", path=artifact_file) from e
    return text.encode("utf-8")


def _extension(path: str) -> str:
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    if not ext:
        raise ValidationError(
            f"artifact file {path!r} has no extension; it picks the format (e.g. .png)",
            path=path,
        )
    return ext


def figure_bytes(
    figure: Any, artifact_file: str, save_kwargs: dict[str, Any] | None = None
) -> bytes:
    """Render a matplotlib or plotly figure in the format named by the file's extension.

    matplotlib: any format its ``savefig`` knows (png, svg, pdf, jpg, …). plotly:
    ``.html`` (plotly.js loaded from its CDN unless ``save_kwargs`` says otherwise),
    ``.json``, or an image format (needs kaleido). Raises ValidationError for other
    objects and unknown formats.
    """
    ext = _extension(artifact_file)
    kwargs = dict(save_kwargs or {})
    module = type(figure).__module__ or ""
    try:
        if module.startswith("plotly"):
            if ext in ("html", "htm"):
                kwargs.setdefault("include_plotlyjs", "cdn")
                kwargs.setdefault("full_html", True)
                return str(figure.to_html(**kwargs)).encode("utf-8")
            if ext == "json":
                return str(figure.to_json(**kwargs)).encode("utf-8")
            return bytes(figure.to_image(format=ext, **kwargs))
        if callable(getattr(figure, "savefig", None)):
            buf = io.BytesIO()
            figure.savefig(buf, format=ext, **kwargs)
            return buf.getvalue()
    except (ValueError, TypeError) as e:
        raise ValidationError(
            f"cannot save the figure as {artifact_file!r}: {e}", path=artifact_file
        ) from e
    raise ValidationError(
        f"log_figure needs a matplotlib or plotly figure, got {type(figure).__name__}"
    )


_PIL_FORMATS = {
    "png": "PNG",
    "jpg": "JPEG",
    "jpeg": "JPEG",
    "gif": "GIF",
    "bmp": "BMP",
    "tif": "TIFF",
    "tiff": "TIFF",
    "webp": "WEBP",
}


def image_bytes(image: Any, artifact_file: str) -> bytes:
    """Encode a numpy array or PIL image in the format named by the file's extension.

    Arrays are ``HxW`` (grayscale), ``HxWx1``, ``HxWx3`` (RGB) or ``HxWx4`` (RGBA);
    integers must lie in 0–255 and floats in 0.0–1.0 (scaled to 0–255); booleans become
    0 and 255. Anything else raises ValidationError; MissingDependencyError without Pillow.
    """
    ext = _extension(artifact_file)
    fmt = _PIL_FORMATS.get(ext)
    if fmt is None:
        raise ValidationError(
            f"cannot write an image as {artifact_file!r}; use one of "
            f"{', '.join(sorted(_PIL_FORMATS))}",
            path=artifact_file,
        )
    try:
        from PIL import Image
    except ImportError as e:
        raise MissingDependencyError("log_image needs Pillow", hint=_PLOTS_HINT) from e
    if isinstance(image, Image.Image):
        img = image
    elif hasattr(image, "__array_interface__") or type(image).__module__.startswith("numpy"):
        img = Image.fromarray(_to_uint8(image))
    else:
        raise ValidationError(
            f"log_image needs a numpy array or a PIL image, got {type(image).__name__}"
        )
    if fmt == "JPEG" and img.mode not in ("L", "RGB", "CMYK"):
        img = img.convert("RGB")  # JPEG has no alpha channel
    buf = io.BytesIO()
    try:
        img.save(buf, format=fmt)
    except (OSError, ValueError) as e:
        raise ValidationError(f"cannot save the image as {artifact_file!r}: {e}") from e
    return buf.getvalue()


def _to_uint8(array: Any) -> Any:
    import numpy as np

    arr = np.asarray(array)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4))):
        raise ValidationError(
            f"an image array must be HxW, HxWx1, HxWx3 or HxWx4; got shape {arr.shape}"
        )
    if arr.size == 0:
        raise ValidationError("an image array must not be empty")
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * 255
    if np.issubdtype(arr.dtype, np.integer):
        if arr.min() < 0 or arr.max() > 255:
            raise ValidationError("integer image values must lie in 0..255")
        return arr.astype(np.uint8)
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all() or arr.min() < 0.0 or arr.max() > 1.0:
            raise ValidationError("float image values must be finite and lie in 0.0..1.0")
        return np.round(arr * 255.0).astype(np.uint8)
    raise ValidationError(f"cannot make an image of an array of dtype {arr.dtype}")
