"""Checks one `dermfed export --format pytorch` file against the RUN folder it came from.

  compare_predictions.py DERMFED RUN MODEL.pt DATASET_FORMAT DATA_DIR DERMFED_MODEL_DIR

- torch.load gives the documented dict; the state dict holds every parameter and buffer
  (BatchNorm running statistics included) and loads into dermfed_model.DualRefNet with
  strict=True (load_dermfed does that);
- for several images with their metadata rows from the dataset's CSV, plus rows with
  missing, re-cased and re-written values, dermfed_model.predict() gives the class
  probabilities `dermfed predict --json` prints, within 1e-4.
Prints the largest difference; exits non-zero naming the first disagreement.
"""

import csv
import glob
import json
import os
import subprocess
import sys

import torch

TOLERANCE = 1e-4
IMAGES = 4

dermfed, run, exported, data_format, data_dir, module_dir = sys.argv[1:7]
sys.path.insert(0, module_dir)
import dermfed_model  # noqa: E402

torch.set_num_threads(2)


def fail(message):
    print(f"FAIL: {exported}: {message}", file=sys.stderr)
    sys.exit(1)


# ---- The file's layout ----
blob = torch.load(exported)
if set(blob) != {"state_dict", "config", "metadata_schema", "dermfed"}:
    fail(f"top-level keys are {sorted(blob)}")
info = blob["dermfed"]
if info.get("format_version") != 1 or len(info.get("sha256", "")) != 64:
    fail(f"dermfed entry {info}")
if info.get("model_version") is not None:
    fail(f"a local RUN has no model version, the file says {info['model_version']}")
state = blob["state_dict"]
if not any(k.endswith("running_mean") for k in state):
    fail("the state dict has no BatchNorm running statistics")
if not all(isinstance(t, torch.Tensor) for t in state.values()):
    fail("the state dict holds something other than tensors")

model, config, schema = dermfed_model.load_dermfed(exported)  # load_state_dict(strict=True)
with open(os.path.join(run, "config.json")) as f:
    if json.load(f) != config:
        fail("config differs from RUN/config.json")
if set(model.state_dict()) != set(state):
    fail("the Python model's state dict keys differ from the file's")
backbone = config["model"]["backbone"]
print(f"{backbone}: {len(state)} tensors load with strict=True")

# ---- Cases: images with their dataset rows, and hand-written rows ----
columns = [c["name"] for c in schema["columns"]]
if data_format == "pad-ufes-20":
    table = os.path.join(data_dir, "metadata.csv")
    images = {os.path.basename(p): p for p in glob.glob(f"{data_dir}/images/**/*.png",
                                                        recursive=True)}
    image_of = lambda row: images[row["img_id"]]  # noqa: E731
    extra = [{"age": "61.0", "region": " neck ", "bleed": "TRUE", "itch": "UNK"}, {}]
else:
    table = os.path.join(data_dir, "ISIC_2019_Training_Metadata.csv")
    image_of = lambda row: os.path.join(  # noqa: E731
        data_dir, "ISIC_2019_Training_Input", row["image"] + ".jpg")
    extra = [{"age_approx": "40", "anatom_site_general": "HEAD/NECK", "sex": ""}, {}]
with open(table, newline="") as f:
    rows = list(csv.DictReader(f))[:IMAGES]
cases = [(image_of(r), {c: r[c] for c in columns if c in r}) for r in rows]
cases += [(cases[i][0], meta) for i, meta in enumerate(extra)]

# ---- Compare ----
worst = 0.0
spread = 0.0
for image, meta in cases:
    args = [dermfed, "predict", "--model", run, "--image", image, "--json", "--threads", "2"]
    if meta:
        args += ["--metadata"] + [f"{k}={v}" for k, v in meta.items()]
    out = subprocess.run(args, capture_output=True, text=True)
    if out.returncode != 0:
        fail(f"dermfed predict {image} failed: {out.stderr.strip()}")
    expected = json.loads(out.stdout)
    got = dermfed_model.predict(model, config, schema, image, meta)
    if list(got) != expected["classes"]:
        fail(f"classes {list(got)} != dermfed's {expected['classes']}")
    diff = max(abs(g - e) for g, e in zip(got.values(), expected["probabilities"]))
    worst = max(worst, diff)
    spread = max(spread, max(expected["probabilities"]) - min(expected["probabilities"]))
    if diff > TOLERANCE:
        fail(f"{image} with {meta}: Python {list(got.values())} vs dermfed "
             f"{expected['probabilities']} (max difference {diff:.3g} > {TOLERANCE})")
if spread < 1e-3:
    fail("every prediction is uniform: the comparison would not notice a wrong network")
print(f"{backbone}: {len(cases)} predictions, max |p_python - p_dermfed| = {worst:.3g}")
