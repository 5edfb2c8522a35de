"""Digits suite of the PID benchmark (benchmarks/pid.py): the EDM teacher of configs/pid/digits_teacher.yaml at Heun
18 and 35 steps against the one-step PID student of configs/pid/digits_pid.yaml, on scikit-learn's 8 x 8 digits,
scored by the Fréchet distance of a small digits CNN's features (lightning_pde.metrics.frechet) to the held-out test
split. Run alone on two trained checkpoints:

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/pid_digits.py TEACHER.ckpt STUDENT.ckpt
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch

#: sampling seeds; every generated set is scored once per seed
SEEDS = (7, 8, 9)


def _timed(fn, repeats: int = 1):
    start = time.perf_counter()
    for _ in range(repeats):
        out = fn()
    return out, (time.perf_counter() - start) / repeats


def digits(results: dict, checkpoints: dict[str, str]) -> None:
    """Digits 8 x 8: the classifier's test accuracy; the noise floor (Fréchet distance between the two halves of the
    300 test images, and between the 300 validation and the 300 test images, the floor at the sample count the models
    are scored with); the Fréchet distance of 300 samples to the 300 test images for the teacher at Heun 18 and 35
    steps and for the PID student, each over 3 sampling seeds (mean and [min, max]); sampling seconds of those 300
    (the student's the mean of 3 repeats) and the ratios student / teacher-35 in Fréchet distance and teacher-35 /
    student in seconds. Samples are clipped to the data range [-1, 1] before the classifier sees them (as images
    are when stored); `clipped` is the mean absolute change clipping made per pixel."""
    import lightning_pde
    from lightning_pde.data import DigitsImages
    from lightning_pde.metrics.frechet import frechet_distance, trained_digits_classifier

    data = DigitsImages()
    data.setup()
    reference, n = data.test, len(data.test)
    classifier = trained_digits_classifier(seed=data.seed)  # trained on this split's training images only
    reference_features = classifier.features(reference)
    teacher = lightning_pde.load(checkpoints["digits_teacher"])
    student = lightning_pde.load(checkpoints["digits_pid"])
    rows = {"classifier": {"test_accuracy": classifier.accuracy(reference, data.test_labels),
                           "val_accuracy": classifier.accuracy(data.val, data.val_labels),
                           "feature_dim": classifier.feature_dim},
            "noise_floor": {"frechet_test_halves": frechet_distance(reference_features[:n // 2],
                                                                    reference_features[n // 2:]),
                            "samples_per_half": n // 2,
                            "frechet_val_vs_test": frechet_distance(classifier.features(data.val),
                                                                    reference_features),
                            "samples": n}}

    samplers = {"teacher_heun18": (lambda g: teacher.sample(n, 18, g), 2 * 18 - 1, 1),
                "teacher_heun35": (lambda g: teacher.sample(n, 35, g), 2 * 35 - 1, 1),
                "pid_student": (lambda g: student.sample(n, generator=g), 1, 3)}
    for model in (teacher, student):  # first calls pay one-off costs (allocations, kernel selection)
        model.sample(8, generator=torch.Generator().manual_seed(0))
    for name, (sample, nfe, repeats) in samplers.items():
        seeds = []
        for seed in SEEDS:
            samples, seconds = _timed(lambda: sample(torch.Generator().manual_seed(seed)), repeats)
            seeds.append({"frechet": frechet_distance(classifier.features(samples.clamp(-1, 1)), reference_features),
                          "seconds": seconds, "clipped": float((samples - samples.clamp(-1, 1)).abs().mean())})
        rows[name] = {key: sum(row[key] for row in seeds) / len(seeds) for key in seeds[0]}
        rows[name].update(nfe=nfe, samples=n)
        rows[name]["spread"] = {"frechet": [min(row["frechet"] for row in seeds),
                                            max(row["frechet"] for row in seeds)]}
    teacher35, pid = rows["teacher_heun35"], rows["pid_student"]
    rows["ratios"] = {"pid_frechet_over_teacher_heun35": pid["frechet"] / teacher35["frechet"],
                      "speedup_pid_vs_teacher_heun35": teacher35["seconds"] / pid["seconds"]}
    results["digits"] = rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("teacher", help="a digits_teacher.yaml checkpoint")
    parser.add_argument("student", help="a digits_pid.yaml checkpoint")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    results: dict = {}
    digits(results, {"digits_teacher": args.teacher, "digits_pid": args.student})
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
