#!/usr/bin/python3
"""site_bench's twin in PyTorch Python: the same work, so the two can be compared as a ratio.

  train_step_<backbone>_<px>px  DualRefNet training steps (forward, DualRefNet loss, backward,
                                AdamW step) on a fixed random batch, in images/s. The model is
                                deploy/python/dermfed_model.py's DualRefNet (the one exported
                                models load into; any backbone) and the loss mirrors
                                common/model/losses.cc (same terms, same defaults).
  pipeline_png_<px>px_<w>w      torchvision transforms (decode with PIL, random resized crop,
                                flips, rotation, colour jitter, normalize) in a DataLoader with
                                w worker processes, images/s over one epoch after a warm-up epoch
                                (persistent workers, so process start-up is not counted).

Prints one JSON object per line: {"name", "value", "unit", "detail"}, with the same names as
site_bench. Run with Debian's python3 (python3-torch, python3-torchvision):

  /usr/bin/python3 tests/bench/site_bench_pytorch.py --data DIR [--threads 2] ...
"""
import argparse
import contextlib
import glob
import json
import os
import sys
import time

import torch
import torch.nn.functional as F
import torchvision
from torchvision import transforms

# PAD-UFES-20's class counts (ACK BCC MEL NEV SCC SEK), as in site_bench.cc.
CLASS_COUNTS = [730, 845, 52, 244, 192, 235]


# ---- DualRefNet: the shipped PyTorch definition (deploy/python/dermfed_model.py) ----

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "deploy", "python"))
from dermfed_model import DualRefNet  # noqa: E402  (after the path is set)


class DualRefNetLoss:
    """common/model/losses.cc: weighted CE + λ_sr·L1(SR, image) + λ_cf·Σ_c (n_c/n_max)·‖W_c‖²."""

    def __init__(self, counts, lambda_sr=0.1, lambda_cf=1e-3):
        n, k = float(sum(counts)), float(len(counts))
        self.weights = torch.tensor([n / (k * c) if c > 0 else 0.0 for c in counts])
        self.freq = torch.tensor([c / max(counts) for c in counts])
        self.lambda_sr, self.lambda_cf = lambda_sr, lambda_cf

    def __call__(self, net, logits, sr, labels, image):
        total = F.cross_entropy(logits, labels, weight=self.weights.to(logits.device))
        if self.lambda_sr > 0 and sr is not None:
            total = total + self.lambda_sr * F.l1_loss(sr, image)
        if self.lambda_cf > 0:
            w = net.classifier.weight
            total = total + self.lambda_cf * (self.freq.to(w.device) * w.pow(2).sum(1)).sum()
        return total


def train_step_images_per_second(args, backbone, size, steps, device):
    torch.manual_seed(0)
    net = DualRefNet(backbone, num_classes=len(CLASS_COUNTS), metadata_dim=args.metadata_dim)
    net.to(device)
    loss_fn = DualRefNetLoss(CLASS_COUNTS)
    # Trainer's defaults: AdamW, lr 1e-3, weight decay 1e-4.
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-4)
    images = torch.randn(args.batch_size, 3, size, size)
    metadata = torch.randn(args.batch_size, args.metadata_dim)
    labels = torch.arange(args.batch_size) % len(CLASS_COUNTS)
    amp = args.mixed_precision and device.type == "cuda"

    def step():
        # As Trainer::Step: move the batch, forward, loss, backward, step, read the loss.
        net.train()
        image, meta, y = images.to(device), metadata.to(device), labels.to(device)
        opt.zero_grad()
        # Trainer::Step: bfloat16 autocast of the forward pass only, on CUDA only.
        with (torch.autocast("cuda", dtype=torch.bfloat16) if amp else contextlib.nullcontext()):
            logits, sr = net(image, meta, with_sr=True)
        logits = logits.float()
        sr = sr.float() if sr is not None else None
        loss = loss_fn(net, logits, sr, y, image)
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(args.warmup_steps):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    parameters = sum(p.numel() for p in net.parameters())
    return args.batch_size * steps / (time.perf_counter() - start), parameters


# ---- Data pipeline ----

class PngFolder(torch.utils.data.Dataset):
    def __init__(self, paths, transform):
        self.paths, self.transform = paths, transform

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        from PIL import Image
        with Image.open(self.paths[i]) as img:
            return self.transform(img.convert("RGB")), 0


def pipeline_images_per_second(args):
    paths = sorted(glob.glob(os.path.join(args.data, "**", "*.png"), recursive=True))
    if not paths:
        raise SystemExit(f"site_bench_pytorch: no PNG below {args.data}")
    # The same augmentations as client/image/transforms.h's AugmentConfig defaults.
    transform = transforms.Compose([
        transforms.RandomResizedCrop(args.pipeline_size, scale=(0.6, 1.0), ratio=(3 / 4, 4 / 3)),
        transforms.RandomHorizontalFlip(),
        transforms.RandomVerticalFlip(),
        transforms.RandomRotation(30),
        transforms.ColorJitter(brightness=0.15, contrast=0.15, saturation=0.15),
        transforms.ToTensor(),
        transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    ])
    loader = torch.utils.data.DataLoader(
        PngFolder(paths, transform), batch_size=args.batch_size, shuffle=True,
        num_workers=args.workers, persistent_workers=args.workers > 0,
        prefetch_factor=4 if args.workers > 0 else 2)
    seconds = 0.0
    for _ in range(2):  # the first epoch starts the workers and warms the page cache
        start = time.perf_counter()
        for _ in loader:
            pass
        seconds = time.perf_counter() - start
    return len(paths), len(paths) / seconds


def record(name, value, detail):
    print(json.dumps({"name": name, "value": round(value, 3), "unit": "images/s",
                      "detail": detail}), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--metadata-dim", type=int, default=100)
    p.add_argument("--tiny-size", type=int, default=64)
    p.add_argument("--tiny-steps", type=int, default=30)
    p.add_argument("--real-backbone", default="mobilenet_v2")
    p.add_argument("--real-size", type=int, default=128)
    p.add_argument("--real-steps", type=int, default=5)
    p.add_argument("--warmup-steps", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--data", help="PAD-UFES-20-format folder (needed for the pipeline)")
    p.add_argument("--pipeline-size", type=int, default=128)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--mixed-precision", action="store_true",
                   help="bfloat16 autocast of the forward pass on CUDA, as Trainer does")
    p.add_argument("--backbones", help="comma-separated: train these at --real-size instead of "
                   "tiny + --real-backbone (gpu_bench.sh)")
    p.add_argument("--skip-train", action="store_true")
    p.add_argument("--skip-pipeline", action="store_true")
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                          else ("cpu" if args.device == "auto" else args.device))
    common = f"batch {args.batch_size}, {args.threads} threads, {device}"
    if args.mixed_precision and device.type == "cuda":
        common += ", bfloat16 autocast"
    cases = ((("tiny", args.tiny_size, args.tiny_steps),
              (args.real_backbone, args.real_size, args.real_steps)) if not args.backbones else
             tuple((b, args.real_size, args.real_steps) for b in args.backbones.split(",") if b))
    if not args.skip_train:
        for backbone, size, steps in cases:
            ips, parameters = train_step_images_per_second(args, backbone, size, steps, device)
            record(f"train_step_{backbone}_{size}px", ips,
                   f"{common}, {steps} steps, metadata {args.metadata_dim}, "
                   f"{parameters} parameters")
    if not args.skip_pipeline:
        if not args.data:
            raise SystemExit("site_bench_pytorch: --data is needed for the pipeline benchmark")
        rows, ips = pipeline_images_per_second(args)
        record(f"pipeline_png_{args.pipeline_size}px_{args.workers}w", ips,
               f"{rows} PNGs, batch {args.batch_size}, {args.workers} workers, augment on")
    return 0


if __name__ == "__main__":
    sys.exit(main())
