#!/usr/bin/python3
"""Writes the torchvision parity fixtures for tests/parity/parity_check.cc.

Usage: make_parity_fixtures.py OUT_DIR

For each backbone: <name>.zip.pth and <name>.legacy.pth (the state dict, saved exactly as
torchvision publishes weights, in the zip and the pre-1.6 format) and <name>.io.pth
({"input": x, "output": model(x)} in eval mode). densenet121 also gets
densenet121.legacy_keys.pth: old key names ("norm.1") and no num_batches_tracked, as the
2017 checkpoints have. BatchNorm running statistics are calibrated on random batches and then
perturbed, so that buffers influence the output and a wrongly loaded buffer shows.

Does nothing when OUT_DIR/STAMP says the files are current (same script, same torch and
torchvision). When torchvision cannot be imported, writes OUT_DIR/SKIPPED with the reason
and exits 0; the parity tests then report themselves skipped.
"""
import hashlib
import json
import os
import re
import sys
import time
from collections import OrderedDict

BACKBONES = ["vgg13", "densenet121", "resnet50", "efficientnet_b0", "mobilenet_v2"]
# A 2017 DenseNet key "…denselayer1.norm.1.weight" is "…denselayer1.norm1.weight" today.
CURRENT_DENSE_KEY = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))([12])\.")


def expected_files():
    files = []
    for name in BACKBONES:
        files += [f"{name}.zip.pth", f"{name}.legacy.pth", f"{name}.io.pth"]
    files.append("densenet121.legacy_keys.pth")
    return files


def atomic_save(obj, path, **kwargs):
    import torch

    tmp = path + ".tmp"
    torch.save(obj, tmp, **kwargs)
    os.replace(tmp, path)


def calibrate_and_perturb_batchnorm(model, generator):
    import torch

    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    if not norms:
        return
    # Cumulative averages over two random batches: realistic statistics, so activations
    # keep a sane scale through 100+ layers. The perturbation after it is mild because its
    # effect compounds with depth; larger outputs would make the 1e-4 tolerance meaningless.
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.randn(4, 3, 224, 224, generator=generator))
        for m in norms:
            m.momentum = 0.1
            std = m.running_var.sqrt()
            m.running_mean.add_(0.1 * std * torch.randn(m.running_mean.shape, generator=generator))
            m.running_var.mul_(torch.empty(m.running_var.shape).uniform_(0.9, 1.1, generator=generator))
            m.weight.mul_(torch.empty(m.weight.shape).uniform_(0.9, 1.1, generator=generator))
            m.bias.add_(0.05 * torch.randn(m.bias.shape, generator=generator))


def legacy_key_state_dict(state):
    old = OrderedDict()
    for key, tensor in state.items():
        if key.endswith("num_batches_tracked"):
            continue
        old[CURRENT_DENSE_KEY.sub(r"\1.\2.", key)] = tensor
    return old


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    stamp_path = os.path.join(out, "STAMP")
    skip_path = os.path.join(out, "SKIPPED")
    try:
        import torch
        import torchvision
    except Exception as e:  # ImportError, or a broken install raising something else.
        with open(skip_path, "w") as f:
            f.write(f"{sys.executable} cannot import torch/torchvision: {e!r}\n")
        if os.path.exists(stamp_path):
            os.remove(stamp_path)
        print(f"parity fixtures skipped: {sys.executable} cannot import torchvision ({e!r})")
        return 0

    with open(__file__, "rb") as f:
        script_hash = hashlib.sha256(f.read()).hexdigest()
    stamp = {"script": script_hash, "torch": torch.__version__,
             "torchvision": torchvision.__version__, "files": expected_files()}
    try:
        with open(stamp_path) as f:
            current = json.load(f) == stamp
    except (OSError, ValueError):
        current = False
    if current and all(os.path.exists(os.path.join(out, n)) for n in expected_files()):
        print(f"parity fixtures in {out} are current")
        return 0
    if os.path.exists(stamp_path):
        os.remove(stamp_path)
    if os.path.exists(skip_path):
        os.remove(skip_path)

    torch.set_num_threads(os.cpu_count() or 1)
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    for index, name in enumerate(BACKBONES):
        start = time.time()
        torch.manual_seed(1000 + index)
        model = getattr(torchvision.models, name)(weights=None)
        calibrate_and_perturb_batchnorm(model, torch.Generator().manual_seed(2000 + index))
        model.eval()
        with torch.no_grad():
            y = model(x)
        state = model.state_dict()
        base = os.path.join(out, name)
        atomic_save(state, base + ".zip.pth")
        atomic_save(state, base + ".legacy.pth", _use_new_zipfile_serialization=False)
        if name == "densenet121":
            atomic_save(legacy_key_state_dict(state), base + ".legacy_keys.pth",
                        _use_new_zipfile_serialization=False)
        atomic_save({"input": x, "output": y}, base + ".io.pth")
        print(f"{name}: {len(state)} tensors, output |max| {y.abs().max().item():.4g}, "
              f"{time.time() - start:.1f} s")
        del model, state

    with open(stamp_path, "w") as f:
        json.dump(stamp, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
