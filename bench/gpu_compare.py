#!/usr/bin/env python3
"""Kiln's GPU numbers beside PyTorch's and JAX's, with issue 8's targets (docs/gpu.md).

    python3 bench/gpu_compare.py KILN.json REFERENCE.json

KILN.json from `kiln bench --gpu --json`, REFERENCE.json from `bench/gpu_reference.py --json`,
both of the same run on the same GPU. Each cell of the table is the number and, in brackets,
how many times better Kiln's traced function (the first column) does: the other's time divided
by Kiln's, or Kiln's bandwidth divided by the other's (above 1: Kiln is ahead). The exit code
is 0 whether or not the targets are met (1 when a file cannot be read).
"""

import json
import sys

COLUMNS = [  # (heading, impls that fill it)
    ("Kiln graph", ["kiln_graph"]),
    ("Kiln eager", ["kiln_eager"]),
    ("PyTorch graph/compile", ["torch_graph", "torch_compile"]),
    ("PyTorch eager", ["torch_eager"]),
    ("JAX jit", ["jax_jit"]),
]
METRICS = {  # per workload kind: (metric, label, higher is better)
    "power": [("back_to_back", "per call, back to back", False), ("synced", "per call, synced", False)],
    "relu_chain": [("synced", "per call, synced", False), ("back_to_back", "per call, back to back", False),
                   ("bandwidth", "bandwidth", True), ("copy_fraction", "of copy bandwidth", True)],
    "mlp_step": [("synced", "per step, synced", False), ("back_to_back", "per step, back to back", False)],
}
SECONDS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
POWER_TARGET_US = 20.0
RELU_TARGET_FRACTION = 0.90


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        sys.exit(f"gpu_compare: cannot read {path}: {e}")


def kind(name):
    for k in METRICS:
        if name.startswith(k):
            return k
    return None


class Table:
    """(name, impl, metric) -> (value, unit), from both files."""

    def __init__(self, *files):
        self.cells, self.names = {}, []
        for data in files:
            for r in data.get("results", []):
                key = (r["name"], r.get("impl", ""), r["metric"])
                self.cells[key] = (float(r["value"]), r["unit"])
                if r["name"] not in self.names:
                    self.names.append(r["name"])
        self.derive_fractions()

    def get(self, name, impls, metric, unit=None):
        """The first of `impls` that has the metric: (value in `unit` if given, unit, impl) or None."""
        for impl in impls:
            cell = self.cells.get((name, impl, metric))
            if cell:
                value, u = cell
                if unit and unit != u and u in SECONDS and unit in SECONDS:
                    value, u = value * SECONDS[u] / SECONDS[unit], unit
                return value, u, impl
        return None

    def derive_fractions(self):
        """copy_fraction for an impl that has a bandwidth but none (a column whose file measured no
        copy): its bandwidth over a copy bandwidth of this run, the reference's if there is one."""
        copies = [(n, i) for (n, i, m) in self.cells if n.startswith("copy_d2d") and m == "bandwidth"]
        copies.sort(key=lambda c: c[1] == "kiln")  # PyTorch's copy first, else Kiln's
        for (name, impl, metric), (value, unit) in list(self.cells.items()):
            if metric != "bandwidth" or name.startswith("copy_d2d") or (name, impl, "copy_fraction") in self.cells:
                continue
            if copies:
                copy_bw = self.cells[(copies[0][0], copies[0][1], "bandwidth")][0]
                self.cells[(name, impl, "copy_fraction")] = (value / copy_bw, "fraction")


def fmt(value, unit):
    if unit == "fraction":
        return f"{100 * value:.1f}%"
    if unit == "GB/s":
        return f"{value:.3g} GB/s" if value < 100 else f"{value:.0f} GB/s"
    return f"{value:.3g} {unit}" if value < 100 else f"{value:.0f} {unit}"


def main(argv):
    if len(argv) != 3:
        print(__doc__.strip(), file=sys.stderr)
        return 1
    kiln, ref = load(argv[1]), load(argv[2])
    print(f"GPU comparison: Kiln ({argv[1]}) vs PyTorch and JAX ({argv[2]}), float32, TF32 off")
    if ref.get("device"):
        print(f"device: {ref['device']}; versions: " + ", ".join(f"{k} {v}" for k, v in ref.get("versions", {}).items()))
    if kiln.get("available") is False:
        print(f"Kiln saw no GPU: {kiln.get('reason', '?')}")
    if kiln.get("available") is not False and kiln.get("quick") != ref.get("quick"):
        print("WARNING: one file is from a --quick run and the other is not: the sizes differ")
    for label, data in (("Kiln", kiln), ("the reference", ref)):
        if data.get("verified") is False:
            print(f"WARNING: {label} reported results that differ from the CPU's (see its log)")
    for note in ref.get("notes", []):
        print(f"note: {note}")
    t = Table(kiln, ref)

    widths = [40] + [22] * len(COLUMNS)
    head = ["workload, metric"] + [c[0] for c in COLUMNS]
    print()
    print("".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(head, widths))))
    for name in t.names:
        k = kind(name)
        if not k:
            continue
        for metric, label, higher in METRICS[k]:
            base = t.get(name, ["kiln_graph"], metric)
            cells = []
            for _, impls in COLUMNS:
                got = t.get(name, impls, metric, base[1] if base else None)
                if not got:
                    cells.append("-")
                    continue
                text = fmt(got[0], got[1])
                if base and got[2] != "kiln_graph" and got[0] > 0 and base[0] > 0:
                    ratio = base[0] / got[0] if higher else got[0] / base[0]
                    text += f" ({ratio:.2f}x)"
                if got[2] == "torch_compile":
                    text = "c " + text
                cells.append(text)
            if any(c != "-" for c in cells):
                row = [f"{name} {label}"] + cells
                print("".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
    copies = [(n, i) for (n, i, m) in t.cells if n.startswith("copy_d2d") and m == "bandwidth"]
    if copies:
        print("copy bandwidth (device to device, bytes read + written / time): " +
              ", ".join(f"{i} {fmt(t.cells[(n, i, 'bandwidth')][0], 'GB/s')} ({n})" for n, i in sorted(copies)))
    print("(x: how many times better the Kiln graph does; c: torch.compile; back to back: N calls, one synchronize)")

    print("\ntargets (issue 8):")

    def verdict(ok):
        return "met" if ok else "NOT met"

    for metric in ("back_to_back", "synced"):
        got = t.get("power_10x10", ["kiln_graph"], metric, "us")
        if got:
            print(f"  power(x, 100) <= {POWER_TARGET_US:.0f} us a call ({metric}): {got[0]:.2f} us: "
                  f"{verdict(got[0] <= POWER_TARGET_US)}")
        else:
            print(f"  power(x, 100) <= {POWER_TARGET_US:.0f} us a call ({metric}): no Kiln number")
    relu = [n for n in t.names if n.startswith("relu_chain")]
    for name in relu:
        got = t.get(name, ["kiln_graph"], "copy_fraction")
        if got:
            print(f"  relu chain >= {100 * RELU_TARGET_FRACTION:.0f}% of copy bandwidth ({name}): "
                  f"{100 * got[0]:.1f}%: {verdict(got[0] >= RELU_TARGET_FRACTION)}")
    if not relu:
        print("  relu chain: no numbers")
    for name in [n for n in t.names if n.startswith("mlp_step")]:
        for metric in ("synced", "back_to_back"):
            mine = t.get(name, ["kiln_graph"], metric, "ms")
            if not mine:
                print(f"  {name} ({metric}): no Kiln number")
                continue
            parts, ok, missing = [], True, False
            for label, impl in (("PyTorch graph replay", "torch_graph"), ("jax.jit", "jax_jit")):
                other = t.get(name, [impl], metric, "ms")
                if other:
                    parts.append(f"{label} {other[0]:.3g} ms")
                    ok = ok and mine[0] < other[0]
                else:
                    parts.append(f"{label} missing")
                    missing = True
            status = verdict(False) if not ok else "cannot tell (a reference is missing)" if missing else verdict(True)
            print(f"  {name} ({metric}) faster than PyTorch graph replay and jax.jit: Kiln {mine[0]:.3g} ms vs "
                  f"{', '.join(parts)}: {status}")
    if "mlp_step_b64" in t.names and "mlp_step_b4096" not in t.names:
        print("  mlp_step_b4096: not measured (a --quick run measures batch 64 only)")
    if not any(n.startswith("mlp_step") for n in t.names):
        print("  MLP step: no numbers")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
