"""DualRefNet in PyTorch, for the files `dermfed export --format pytorch` writes.

    import dermfed_model
    model, config, schema = dermfed_model.load_dermfed("model.pt")
    probs = dermfed_model.predict(model, config, schema, "lesion.png",
                                  {"age": 61, "region": "NECK", "bleed": "True"})
    # {"ACK": 0.02, "BCC": 0.91, ...}, the numbers `dermfed predict` prints

The network mirrors common/model/dualrefnet.{h,cc} module for module, so the exported
state dict loads with strict=True: the image branch is torchvision's own backbone (its
ImageNet head replaced by Identity, as dermfed builds it without one), then the metadata
MLP, the fusion layer, the classifier and the super-resolution decoder (trained with the
model, used only in training). predict() preprocesses as `dermfed predict` does
(client/image/codec.cc, client/image/transforms.cc, client/data/metadata_encoder.cc): the
whole image resized bilinearly to the model's size without antialiasing, rounded to 8 bits,
normalized with the ImageNet mean and deviation; metadata one-hot / standardized with the
federation's schema. For 8-bit RGB PNGs (what `dermfed datagen` writes) the input tensors are
bit-identical. JPEGs much larger than the model's size are decoded at a reduced DCT scale by
both; dermfed can pick scales of n/8 that Pillow cannot, and then the images differ slightly
(a warning says so). PNGs with an alpha channel are composited on black in linear light, as
libpng does, to within one level.

Needs torch, torchvision, numpy and Pillow (Debian: python3-torchvision, python3-pil).
Run as a script for one prediction: python3 dermfed_model.py MODEL.pt IMAGE [column=value...]
"""

import json
import math
import sys
import warnings
from typing import Callable, Dict, Mapping, NamedTuple, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from PIL import Image
from torch import nn
from torchvision.ops import Conv2dNormActivation

FORMAT_VERSION = 1

# ImageNet statistics (client/image/transforms.h), as float32 like dermfed's.
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


# ---- The network ----------------------------------------------------------------------


class BackboneSpec(NamedTuple):
    """How dermfed uses one torchvision backbone (common/model/backbones/)."""

    build: Callable[[], nn.Module]  # headless, torchvision's module names
    features: Callable[[nn.Module, torch.Tensor], torch.Tensor]  # feature maps
    embed: Callable[[nn.Module, torch.Tensor], torch.Tensor]  # maps -> vector
    feature_channels: int
    embedding_dim: int


def _headless(model: nn.Module, parent: str, index: Optional[int] = None) -> nn.Module:
    """Replaces the ImageNet head (model.parent or model.parent[index]) with Identity."""
    if index is None:
        setattr(model, parent, nn.Identity())
    else:
        getattr(model, parent)[index] = nn.Identity()
    return model


def _tiny() -> nn.Module:
    """dermfed's "tiny" test backbone: three stride-2 conv-BN-ReLU stages."""
    model = nn.Module()
    model.features = nn.Sequential(*(Conv2dNormActivation(i, o, 3, stride=2)
                                     for i, o in ((3, 16), (16, 32), (32, 64))))
    return model


def _resnet_features(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
    x = m.maxpool(m.relu(m.bn1(m.conv1(x))))
    return m.layer4(m.layer3(m.layer2(m.layer1(x))))


def _pool(x: torch.Tensor) -> torch.Tensor:
    return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)


BACKBONES: Dict[str, BackboneSpec] = {
    "vgg13": BackboneSpec(
        lambda: _headless(torchvision.models.vgg13(weights=None), "classifier", 6),
        lambda m, x: m.features(x),
        lambda m, f: m.classifier(torch.flatten(m.avgpool(f), 1)), 512, 4096),
    "densenet121": BackboneSpec(
        lambda: _headless(torchvision.models.densenet121(weights=None), "classifier"),
        lambda m, x: F.relu(m.features(x)),
        lambda m, f: _pool(f), 1024, 1024),
    "resnet50": BackboneSpec(
        lambda: _headless(torchvision.models.resnet50(weights=None), "fc"),
        _resnet_features,
        lambda m, f: torch.flatten(m.avgpool(f), 1), 2048, 2048),
    "efficientnet_b0": BackboneSpec(
        lambda: _headless(torchvision.models.efficientnet_b0(weights=None), "classifier", 1),
        lambda m, x: m.features(x),
        lambda m, f: m.classifier(torch.flatten(m.avgpool(f), 1)), 1280, 1280),
    "mobilenet_v2": BackboneSpec(
        lambda: _headless(torchvision.models.mobilenet_v2(weights=None), "classifier", 1),
        lambda m, x: m.features(x),
        lambda m, f: m.classifier(_pool(f)), 1280, 1280),
    "tiny": BackboneSpec(_tiny, lambda m, x: m.features(x), lambda m, f: _pool(f), 64, 64),
}


class SrDecoder(nn.Module):
    """Stage 1: feature maps -> a residual added to the upsampled low-resolution image."""

    def __init__(self, in_channels: int, channels: int):
        super().__init__()
        self.reduce = nn.Conv2d(in_channels, channels, 1)
        self.refine = nn.Conv2d(channels, channels, 3, padding=1)
        self.out = nn.Conv2d(channels, 3, 3, padding=1)

    def forward(self, features, low_res, out_h: int, out_w: int):
        def interp(x, h, w):
            return F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)

        f = F.relu(self.reduce(features))
        mid_h, mid_w = max(f.shape[2], out_h // 4), max(f.shape[3], out_w // 4)
        f = F.relu(self.refine(interp(f, mid_h, mid_w)))
        f = self.out(interp(f, out_h, out_w))
        return interp(low_res, out_h, out_w) + f


class DualRefNet(nn.Module):
    """The multimodal classifier; arguments are config["model"] of an exported file."""

    def __init__(self, backbone: str = "tiny", num_classes: int = 6, metadata_dim: int = 0,
                 metadata_hidden: int = 64, fusion_hidden: int = 256, dropout: float = 0.3,
                 sr_factor: int = 2, sr_channels: int = 32):
        super().__init__()
        if backbone not in BACKBONES:
            raise ValueError(f"backbone '{backbone}' is unknown; choose one of "
                             f"{', '.join(BACKBONES)}")
        self.spec = BACKBONES[backbone]
        self.sr_factor = sr_factor
        self.backbone = self.spec.build()
        fused = self.spec.embedding_dim
        self.metadata = None
        if metadata_dim > 0:
            self.metadata = nn.Sequential(
                nn.Linear(metadata_dim, metadata_hidden), nn.ReLU(), nn.Dropout(dropout),
                nn.Linear(metadata_hidden, metadata_hidden), nn.ReLU())
            fused += metadata_hidden
        self.fusion = nn.Sequential(nn.Linear(fused, fusion_hidden), nn.ReLU(),
                                    nn.Dropout(dropout))
        self.classifier = nn.Linear(fusion_hidden, num_classes)
        self.sr_decoder = (SrDecoder(self.spec.feature_channels, sr_channels)
                           if sr_factor > 1 else None)

    def forward(self, image: torch.Tensor, metadata: Optional[torch.Tensor] = None,
                with_sr: bool = False):
        """Logits (B x num_classes); with with_sr, also the super-resolved image."""
        f = self.sr_factor
        low_res = F.avg_pool2d(image, f) if f > 1 else image
        maps = self.spec.features(self.backbone, low_res)
        fused = self.spec.embed(self.backbone, maps)
        if self.metadata is not None:
            if metadata is None:
                raise ValueError("this model takes metadata: give a B x metadata_dim tensor")
            fused = torch.cat([fused, self.metadata(metadata)], 1)
        logits = self.classifier(self.fusion(fused))
        if not with_sr:
            return logits
        sr = (self.sr_decoder(maps, low_res, image.shape[2], image.shape[3])
              if self.sr_decoder is not None else None)
        return logits, sr


MODEL_OPTIONS = ("backbone", "num_classes", "metadata_dim", "metadata_hidden", "fusion_hidden",
                 "dropout", "sr_factor", "sr_channels")


def load_dermfed(path: str, map_location="cpu") -> Tuple[DualRefNet, dict, dict]:
    """Reads an exported file: (the model in eval mode, its config, its metadata schema).

    The file's "dermfed" entry (format_version, model_version, sha256) is model.dermfed.
    """
    blob = torch.load(path, map_location=map_location)
    info = blob.get("dermfed") if isinstance(blob, dict) else None
    if not info or info.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: not a dermfed export of format version {FORMAT_VERSION} "
                         f"(dermfed entry: {info!r})")
    config = blob["config"]
    model = DualRefNet(**{k: config["model"][k] for k in MODEL_OPTIONS})
    model.load_state_dict(blob["state_dict"], strict=True)
    model.eval()
    model.dermfed = info
    return model, config, blob["metadata_schema"]


# ---- Images (client/image/codec.cc, transforms.cc) --------------------------------------

# libjpeg-turbo's scaling factors that do not enlarge, in TurboJPEG's order.
_JPEG_SCALES = ((1, 1), (7, 8), (3, 4), (5, 8), (1, 2), (3, 8), (1, 4), (1, 8))


def _jpeg_scale(w: int, h: int, min_side: int) -> Tuple[int, int, int, int]:
    """(num, den, width, height): the scale dermfed decodes a w x h JPEG at, the smallest
    whose shorter side is still >= min_side."""
    best = (1, 1, w, h)
    for num, den in _JPEG_SCALES:
        sw, sh = (w * num + den - 1) // den, (h * num + den - 1) // den
        if min(sw, sh) >= min_side and sw * sh < best[2] * best[3]:
            best = (num, den, sw, sh)
    return best


def _srgb_composite_on_black(rgba: np.ndarray) -> np.ndarray:
    """libpng's alpha removal for 8-bit sRGB output: colour * alpha in linear light."""
    c = rgba[..., :3].astype(np.float64) / 255
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    lin *= rgba[..., 3:4].astype(np.float64) / 255
    out = np.where(lin <= 0.0031308, lin * 12.92, 1.055 * lin ** (1 / 2.4) - 0.055)
    return np.clip(np.round(out * 255), 0, 255).astype(np.uint8)


def decode_image(path: str, size: int) -> np.ndarray:
    """Height x width x 3 uint8 RGB, as dermfed decodes `path` for a model of side `size`."""
    with Image.open(path) as im:
        if im.format == "JPEG":
            w, h = im.size
            num, den, sw, sh = _jpeg_scale(w, h, size)
            if num == 1 and den > 1:
                im.draft("RGB", (w // den, h // den))  # Pillow then picks 1/den too
            elif num != den:
                warnings.warn(f"{path}: dermfed decodes this JPEG at {sw}x{sh} ({num}/{den}), a "
                              f"scale Pillow cannot; the prediction may differ slightly")
            return np.asarray(im.convert("RGB"))
        if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
            return _srgb_composite_on_black(np.asarray(im.convert("RGBA")))
        return np.asarray(im.convert("RGB"))


def resize(rgb: np.ndarray, size: int) -> np.ndarray:
    """dermfed's ResizeCrop of the whole image: bilinear at pixel centres, edges clamped, no
    antialiasing, rounded half up to 8 bits — in float32, operation for operation."""
    h, w = rgb.shape[:2]
    f32 = np.float32

    def coords(n: int):
        c = ((np.arange(size, dtype=np.float64) + 0.5) * (n / size) - 0.5).astype(f32)
        c = np.clip(c, f32(0), f32(n - 1))
        i0 = c.astype(np.int64)
        return i0, np.minimum(i0 + 1, n - 1), c - i0.astype(f32)

    x0, x1, fx = coords(w)
    y0, y1, fy = coords(h)
    img = rgb.astype(f32)
    fx, fy = fx[None, :, None], fy[:, None, None]
    top = img[y0][:, x0] * (f32(1) - fx) + img[y0][:, x1] * fx
    bottom = img[y1][:, x0] * (f32(1) - fx) + img[y1][:, x1] * fx
    value = top * (f32(1) - fy) + bottom * fy
    return np.clip(value + f32(0.5), f32(0), f32(255)).astype(np.uint8)


def image_tensor(path: str, size: int) -> torch.Tensor:
    """3 x size x size float32, normalized: the model's input for one image."""
    r = resize(decode_image(path, size), size).astype(np.float32)
    x = (r / np.float32(255) - IMAGENET_MEAN) / IMAGENET_STD
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))


# ---- Metadata (client/data/metadata_encoder.cc, metadata_schema.cc) ---------------------

_ASCII_WHITESPACE = " \t\n\v\f\r"
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _number(text: str) -> Optional[float]:
    """The finite number `text` spells (after trimming), or None."""
    text = text.strip(_ASCII_WHITESPACE)
    if not text or "_" in text:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def canonical_value(value: str) -> str:
    """The comparison key of a raw value: trimmed, ASCII lower case, whole numbers without a
    fraction ("3.0" and "3" are one value)."""
    trimmed = value.strip(_ASCII_WHITESPACE)
    number = _number(trimmed)
    if number is not None and abs(number) < 1e15 and number == math.floor(number):
        return str(int(number))
    return trimmed.translate(_ASCII_LOWER)


class MetadataEncoder:
    """Raw metadata values -> the float vector the model's metadata branch takes."""

    def __init__(self, schema: dict):
        self.schema = schema
        self.unseen_as_missing = schema.get("unseen_values", "error") == "missing"
        default_missing = schema.get("missing_values", [""])
        self.columns = []
        self.feature_names = []
        for spec in schema["columns"]:
            if not spec.get("used", True):
                continue
            missing = {canonical_value(t) for t in spec.get("missing_values", default_missing)}
            missing.add("")
            column = {"name": spec["name"], "offset": len(self.feature_names),
                      "missing": missing, "numeric": spec["type"] == "numeric"}
            if column["numeric"]:
                column["mean"] = np.float32(spec["mean"])
                column["inv_std"] = np.float32(1.0 / spec["std"])
                self.feature_names += [spec["name"], spec["name"] + ":missing"]
            else:
                values = spec["values"]
                column["slots"] = {canonical_value(v): i for i, v in enumerate(values)}
                column["missing_slot"] = len(values)
                column["vocabulary"] = ", ".join(values)
                self.feature_names += [f"{spec['name']}={v}" for v in values]
                self.feature_names.append(spec["name"] + ":missing")
            self.columns.append(column)
        self.column_names = [c["name"] for c in schema["columns"]]

    @property
    def width(self) -> int:
        return len(self.feature_names)

    def encode(self, values: Mapping[str, object]) -> np.ndarray:
        """`values`: column -> value (str, number or None); absent columns are missing."""
        unknown = sorted(set(values) - set(self.column_names))
        if unknown:
            raise ValueError(f"metadata column(s) {unknown} are not in schema "
                             f"'{self.schema.get('name')}' ({', '.join(self.column_names)})")
        out = np.zeros(self.width, dtype=np.float32)
        for column in self.columns:
            raw = values.get(column["name"])
            raw = "" if raw is None else str(raw)
            missing = canonical_value(raw) in column["missing"]
            block = column["offset"]
            if column["numeric"]:
                if not missing:
                    number = _number(raw)
                    if number is None:
                        raise ValueError(f"column '{column['name']}': '{raw}' is not a number")
                    out[block] = (np.float32(number) - column["mean"]) * column["inv_std"]
                out[block + 1] = 1.0 if missing else 0.0
                continue
            slot = column["slots"].get(canonical_value(raw)) if not missing else None
            if slot is None and not missing and not self.unseen_as_missing:
                raise ValueError(f"column '{column['name']}': value '{raw}' is not in the "
                                 f"schema's vocabulary ({column['vocabulary']})")
            out[block + (column["missing_slot"] if slot is None else slot)] = 1.0
        return out


# ---- Prediction -------------------------------------------------------------------------


def predict(model: DualRefNet, config: dict, schema: dict, image: str,
            metadata: Optional[Mapping[str, object]] = None) -> Dict[str, float]:
    """Class name -> probability for one image file and its metadata, like `dermfed predict`."""
    size = config["image_size"]
    x = image_tensor(image, size)[None]
    meta = None
    if config.get("use_metadata", True) and config["model"]["metadata_dim"] > 0:
        encoder = MetadataEncoder(schema)
        if encoder.width != config["model"]["metadata_dim"]:
            raise ValueError(f"the schema encodes {encoder.width} metadata features, the model "
                             f"takes {config['model']['metadata_dim']}")
        meta = torch.from_numpy(encoder.encode(metadata or {}))[None]
    device = next(model.parameters()).device
    with torch.no_grad():
        logits = model(x.to(device), None if meta is None else meta.to(device))
        probs = torch.softmax(logits, 1)[0].cpu()
    return {name: float(p) for name, p in zip(config["class_names"], probs)}


def main(argv) -> int:
    if len(argv) < 3:
        print(__doc__.split("\n\n")[0], file=sys.stderr)
        print("usage: dermfed_model.py MODEL.pt IMAGE [column=value ...]", file=sys.stderr)
        return 2
    model, config, schema = load_dermfed(argv[1])
    metadata = dict(kv.split("=", 1) for kv in argv[3:])
    probs = predict(model, config, schema, argv[2], metadata)
    print(json.dumps({"classes": list(probs), "probabilities": list(probs.values()),
                      "predicted": max(probs, key=probs.get)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
