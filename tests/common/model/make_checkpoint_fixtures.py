#!/usr/bin/python3
"""Writes the torch.save fixtures checkpoint_test reads, into the directory given.

Run at test time by checkpoint_test (nothing generated is committed):
    /usr/bin/python3 make_checkpoint_fixtures.py OUT_DIR

Exits 77 when torch cannot be imported, so the test can skip rather than fail.

Files written:
  state_zip.pt, state_legacy.pt     an OrderedDict state dict (with _metadata) of a small
                                    torchvision-like module plus extra tensors: every storage
                                    dtype, a transposed tensor, views sharing a storage
  state_zip_proto4.pt,
  state_legacy_proto5.pt            the same with pickle protocols 4 and 5 (FRAME, MEMOIZE,
                                    STACK_GLOBAL, SHORT_BINUNICODE)
  plain_dict.pt                     the same entries in a plain dict
  expected.txt, expected.bin        the expected entries, independent of any pickle: one line
                                    per tensor "key dtype ndim size... offset nbytes" and its
                                    contiguous little-endian bytes at offset in expected.bin
  malicious_zip.pt,
  malicious_legacy.pt               a __reduce__ calling os.system to create PWNED_MARKER
  top_list.pt                       a list of tensors at the top level
  training_checkpoint.pt            {'epoch': 3, 'state_dict': ...}
  truncated_zip.pt,
  truncated_legacy.pt               the first part of state_zip.pt / state_legacy.pt
  tar_format.pt                     a tar archive like PyTorch < 0.4 wrote
"""
import collections
import io
import os
import sys
import tarfile

try:
    import torch
    from torch import nn
except Exception as e:  # pylint: disable=broad-except
    print(f"/usr/bin/python3 cannot import torch: {e}", file=sys.stderr)
    sys.exit(77)

PWNED_MARKER = "PWNED_MARKER"


class TinyNet(nn.Module):
    """Named like torchvision's VGG: features.N and classifier.N."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 4, kernel_size=3, padding=1),
            nn.BatchNorm2d(4),
            nn.ReLU(inplace=True),
            nn.Conv2d(4, 2, kernel_size=1, bias=False),
        )
        self.classifier = nn.Sequential(nn.Linear(8, 3))


class Evil:
    """Pickles as a call to os.system; unpickling it with pickle.load would run it."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


def state_dict():
    torch.manual_seed(0)
    net = TinyNet()
    # Give the BatchNorm buffers non-default values, num_batches_tracked included.
    net.train()
    with torch.no_grad():
        net.features(torch.randn(2, 3, 5, 5))
    sd = net.state_dict()
    assert isinstance(sd, collections.OrderedDict) and hasattr(sd, "_metadata")
    shared = torch.arange(20, dtype=torch.float64)
    sd["extra.transposed"] = torch.arange(12, dtype=torch.float32).reshape(3, 4).t()
    sd["extra.view_head"] = shared[2:7]
    sd["extra.view_tail"] = shared[10:20].view(2, 5)
    sd["extra.strided"] = shared[1::3]
    sd["extra.half"] = torch.linspace(-2, 2, 5).half()
    sd["extra.bfloat16"] = torch.linspace(-3, 3, 4).bfloat16()
    sd["extra.int32"] = torch.tensor([-5, 0, 7], dtype=torch.int32)
    sd["extra.int16"] = torch.tensor([[-300, 2], [3, 32000]], dtype=torch.int16)
    sd["extra.int8"] = torch.tensor([-128, 127], dtype=torch.int8)
    sd["extra.uint8"] = torch.tensor([0, 255, 9], dtype=torch.uint8)
    sd["extra.bool"] = torch.tensor([True, False, True])
    sd["extra.scalar"] = torch.tensor(2.5)
    sd["extra.empty"] = torch.zeros(0, 3)
    sd["extra.param"] = nn.Parameter(torch.full((2,), 1.5))
    return sd


def write_expected(sd, out_dir):
    lines, blob = [], io.BytesIO()
    for key, t in sd.items():
        t = t.detach().contiguous()
        raw = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        dtype = str(t.dtype).replace("torch.", "")
        fields = [key, dtype, t.dim(), *t.shape, blob.tell(), len(raw)]
        lines.append(" ".join(str(x) for x in fields))
        blob.write(raw)
    with open(os.path.join(out_dir, "expected.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(out_dir, "expected.bin"), "wb") as f:
        f.write(blob.getvalue())


def main():
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    path = lambda name: os.path.join(out_dir, name)

    sd = state_dict()
    torch.save(sd, path("state_zip.pt"))
    torch.save(sd, path("state_legacy.pt"), _use_new_zipfile_serialization=False)
    torch.save(sd, path("state_zip_proto4.pt"), pickle_protocol=4)
    torch.save(sd, path("state_legacy_proto5.pt"), pickle_protocol=5,
               _use_new_zipfile_serialization=False)
    torch.save(dict(sd), path("plain_dict.pt"))
    write_expected(sd, out_dir)

    marker = path(PWNED_MARKER)
    evil = collections.OrderedDict(weight=torch.ones(2), payload=Evil(marker))
    torch.save(evil, path("malicious_zip.pt"))
    torch.save(evil, path("malicious_legacy.pt"), _use_new_zipfile_serialization=False)
    assert not os.path.exists(marker), "pickling must not run the payload"

    torch.save([torch.ones(2), torch.zeros(3)], path("top_list.pt"))
    torch.save({"epoch": 3, "state_dict": sd}, path("training_checkpoint.pt"))

    for name in ("state_zip.pt", "state_legacy.pt"):
        with open(path(name), "rb") as f:
            data = f.read()
        with open(path("truncated_" + name.split("_", 1)[1]), "wb") as f:
            f.write(data[: len(data) * 2 // 3])

    with tarfile.open(path("tar_format.pt"), "w", format=tarfile.PAX_FORMAT) as tar:
        for member in ("sys_info", "pickle", "tensors", "storages"):
            payload = b"\x80\x02K\x00."
            info = tarfile.TarInfo(member)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))


if __name__ == "__main__":
    main()
