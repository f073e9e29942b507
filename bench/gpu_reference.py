#!/usr/bin/env python3
"""The workloads of `kiln bench --gpu` in PyTorch and JAX, timed the same way (docs/gpu.md).

    python3 bench/gpu_reference.py [--quick] [--json FILE]

Workloads (float32, TF32 off everywhere):
  power_10x10      power(x, 100): 100 chained matmuls of a 10x10 row-stochastic matrix
  relu_chain_64M   relu(x * 1.5 - 0.25) * 2 on 2^26 floats (64K with --quick), with a
                   device-to-device copy of the same bytes (copy_d2d_256MB) for the bandwidth
  mlp_step_bN      the MLP 784-256-256-10 training step (forward, backward, SGD lr 0.01), N = 64
                   and 4096 (64 only with --quick)
Columns (the "impl" of each result):
  torch_graph      power and the MLP step captured once with torch.cuda.CUDAGraph and replayed
  torch_compile    the relu chain with torch.compile
  torch_eager      the same PyTorch code run op by op
  jax_jit          jax.jit (the MLP step with its parameters donated)
Timing as kiln's: warm-up calls, then the median of several batches of calls, either with a
synchronize after every call (synced: torch.cuda.synchronize / block_until_ready) or queued back
to back with one synchronize per batch (back_to_back).

PyTorch and JAX each run in a child process of this script (so one's CUDA libraries, memory pool
or crash cannot disturb the other); a framework or torch.compile that is missing or fails is
skipped with a note, and the other numbers are still written.
"""

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import traceback

# TF32 off for every cuBLAS/cuDNN call of either framework (each also sets its own switch below)
os.environ.setdefault("NVIDIA_TF32_OVERRIDE", "0")
# JAX must not grab 75% of the GPU's memory up front
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

A, B, C = 1.5, -0.25, 2.0  # relu(x * A + B) * C, as kiln's relu chain
LR = 0.01
DIMS = [784, 256, 256, 10]
TOLERANCE = 1e-4  # relative: max |gpu - cpu| / max |cpu|
CHILD_TIMEOUT_S = 150  # per framework; the whole GPU check has to fit in 10 minutes


class Repeat:
    def __init__(self, quick):
        if quick:
            self.warmup, self.reps, self.min_batch_s, self.max_iters = 3, 3, 0.0, 2
        else:
            self.warmup, self.reps, self.min_batch_s, self.max_iters = 5, 7, 0.02, 5000


def time_gpu(call, sync, synced, rep):
    """Median seconds per call of call(); sync() waits for the GPU."""
    for _ in range(rep.warmup):
        call()
    sync()

    def batch(n):
        t0 = time.perf_counter()
        for _ in range(n):
            call()
            if synced:
                sync()
        if not synced:
            sync()
        return (time.perf_counter() - t0) / n

    estimate = batch(1)
    iters = int(min(rep.max_iters, max(1, math.ceil(rep.min_batch_s / max(estimate, 1e-9)))))
    return statistics.median(batch(iters) for _ in range(rep.reps))


class Results:
    """One child's results, rewritten to `out` after each one (a child that hangs or crashes
    keeps what it measured)."""

    def __init__(self, out):
        self.out, self.rows, self.notes, self.verified = out, [], [], True
        self.device, self.versions, self.copy_s, self.jax_relu_s = None, {}, None, None

    def save(self):
        with open(self.out, "w") as f:
            json.dump({"rows": self.rows, "notes": self.notes, "verified": self.verified, "device": self.device,
                       "versions": self.versions, "copy_s": self.copy_s, "jax_relu_s": self.jax_relu_s}, f)

    def add(self, name, impl, metric, value, unit):
        self.rows.append({"name": name, "impl": impl, "metric": metric, "value": value, "unit": unit})
        print(f"  {name:18} {impl:13} {metric:15} {value:12.3f} {unit}", flush=True)
        self.save()

    def note(self, text):
        self.notes.append(text)
        print(f"  note: {text}", flush=True)
        self.save()

    def check(self, name, impl, got, want):
        """got, want: float64 host arrays or tensors with max/abs (numpy or torch)."""
        err = float(abs(got - want).max()) / max(float(abs(want).max()), 1e-30)
        if not err <= TOLERANCE:
            self.verified = False
            self.note(f"MISMATCH in {name} ({impl}): max |gpu - cpu| / max |cpu| = {err:.3g}, tolerance {TOLERANCE:g}")


def sizes(quick):
    n = 1 << 16 if quick else 1 << 26
    relu = "relu_chain_64K" if quick else "relu_chain_64M"
    copy = "copy_d2d_256KB" if quick else "copy_d2d_256MB"
    batches = [64] if quick else [64, 4096]
    return n, relu, copy, batches


def run_torch(quick, res):
    import torch

    if not torch.cuda.is_available():
        res.note("PyTorch: torch.cuda.is_available() is False: PyTorch columns skipped")
        return
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    rep = Repeat(quick)
    dev = torch.device("cuda:0")
    sync = torch.cuda.synchronize
    res.device = torch.cuda.get_device_name(0)
    res.versions["torch"] = torch.__version__
    n, relu_name, copy_name, batches = sizes(quick)
    gen = torch.Generator().manual_seed(7)

    def capture(fn):
        """fn warmed up on a side stream, then captured into a CUDA graph: (graph, outputs)."""
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for _ in range(3):
                fn()
        torch.cuda.current_stream().wait_stream(s)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = fn()
        return graph, out

    # power(x, 100)
    name = "power_10x10"
    x_cpu = torch.rand(10, 10, generator=gen)
    x_cpu = x_cpu / x_cpu.sum(1, keepdim=True)
    x = x_cpu.to(dev)

    def power(t):
        r = torch.eye(10, device=t.device, dtype=t.dtype)
        for _ in range(100):
            r = t @ r
        return r

    want = power(x_cpu.double())
    res.check(name, "torch_eager", power(x).cpu().double(), want)
    graph, out = capture(lambda: power(x))
    graph.replay()
    res.check(name, "torch_graph", out.cpu().double(), want)
    res.add(name, "torch_graph", "back_to_back", time_gpu(graph.replay, sync, False, rep) * 1e6, "us")
    res.add(name, "torch_graph", "synced", time_gpu(graph.replay, sync, True, rep) * 1e6, "us")
    res.add(name, "torch_eager", "back_to_back", time_gpu(lambda: power(x), sync, False, rep) * 1e6, "us")
    res.add(name, "torch_eager", "synced", time_gpu(lambda: power(x), sync, True, rep) * 1e6, "us")
    del graph, out

    # relu chain and the copy of the same bytes
    nbytes = 2.0 * 4.0 * n
    x_cpu = torch.randn(n, generator=gen)
    x = x_cpu.to(dev)

    def chain(t):
        return torch.relu(t * A + B) * C

    want = chain(x_cpu.double())
    dst = torch.empty_like(x)
    copy_s = time_gpu(lambda: dst.copy_(x), sync, True, rep)
    res.add(copy_name, "torch", "synced", copy_s * 1e6, "us")
    res.add(copy_name, "torch", "bandwidth", nbytes / copy_s / 1e9, "GB/s")
    res.copy_s = copy_s
    del dst
    columns = [("torch_eager", chain)]
    try:
        compiled = torch.compile(chain)
        res.check(relu_name, "torch_compile", compiled(x).cpu().double(), want)  # compiles
        columns.insert(0, ("torch_compile", compiled))
    except Exception as e:  # no compiler, no Triton ...
        res.note(f"torch.compile failed, torch_compile column skipped: {type(e).__name__}: {str(e)[:300]}")
    res.check(relu_name, "torch_eager", chain(x).cpu().double(), want)
    del x_cpu, want
    for impl, fn in columns:
        s = time_gpu(lambda: fn(x), sync, True, rep)
        res.add(relu_name, impl, "synced", s * 1e6, "us")
        res.add(relu_name, impl, "back_to_back", time_gpu(lambda: fn(x), sync, False, rep) * 1e6, "us")
        res.add(relu_name, impl, "bandwidth", nbytes / s / 1e9, "GB/s")
        res.add(relu_name, impl, "copy_fraction", copy_s / s, "fraction")
    del x

    # the MLP training step
    def make_model(batch, seed):
        g = torch.Generator().manual_seed(seed)
        params = []
        for l in range(3):
            w = torch.randn(DIMS[l], DIMS[l + 1], generator=g) * math.sqrt(2.0 / DIMS[l])
            params.append(w.to(dev).requires_grad_())
            params.append(torch.zeros(DIMS[l + 1], device=dev, requires_grad=True))
        xb = torch.randn(batch, DIMS[0], generator=g).to(dev)
        yb = torch.nn.functional.one_hot(torch.randint(0, DIMS[3], (batch,), generator=g), DIMS[3]).float().to(dev)
        return params, xb, yb, torch.optim.SGD(params, lr=LR)

    def loss_fn(params, xb, yb):
        h = xb
        for l in range(3):
            h = h @ params[2 * l] + params[2 * l + 1]
            if l < 2:
                h = torch.relu(h)
        return -(yb * torch.log_softmax(h, 1)).sum(1).mean()

    def stepper(model):
        params, xb, yb, opt = model

        def step():
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(params, xb, yb)
            loss.backward()
            opt.step()
            return loss

        return step

    for batch in batches:
        name = f"mlp_step_b{batch}"
        # the graph: warm-up steps on a side stream, grads set to None, then one captured step
        # (PyTorch's documented whole-network capture)
        model = make_model(batch, 10)
        params, xb, yb, opt = model
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for _ in range(3):
                stepper(model)()
        torch.cuda.current_stream().wait_stream(s)
        graph = torch.cuda.CUDAGraph()
        opt.zero_grad(set_to_none=True)
        with torch.cuda.graph(graph):
            loss = loss_fn(params, xb, yb)
            loss.backward()
            opt.step()
        # the replayed step against the eager one from the same parameters
        eager = make_model(batch, 10)
        with torch.no_grad():
            for p, q in zip(eager[0], params):
                p.copy_(q)
        graph.replay()
        want = stepper(eager)()
        res.check(name + " loss", "torch_graph", loss.detach().cpu().double(), want.detach().cpu().double())
        for p, q in zip(params, eager[0]):
            res.check(name + " params", "torch_graph", p.detach().cpu().double(), q.detach().cpu().double())
        res.add(name, "torch_graph", "synced", time_gpu(graph.replay, sync, True, rep) * 1e3, "ms")
        res.add(name, "torch_graph", "back_to_back", time_gpu(graph.replay, sync, False, rep) * 1e3, "ms")
        step = stepper(eager)
        res.add(name, "torch_eager", "synced", time_gpu(step, sync, True, rep) * 1e3, "ms")
        res.add(name, "torch_eager", "back_to_back", time_gpu(step, sync, False, rep) * 1e3, "ms")
        del graph, loss, model, params, opt, eager, step


def run_jax(quick, res):
    import jax
    import jax.numpy as jnp
    import numpy as np

    jax.config.update("jax_default_matmul_precision", "highest")
    gpus = [d for d in jax.devices() if d.platform == "gpu"]
    if not gpus:
        res.note(f"JAX: no GPU device (devices: {jax.devices()}): JAX column skipped")
        return
    dev = gpus[0]
    res.device = getattr(dev, "device_kind", str(dev))
    res.versions["jax"] = jax.__version__
    rep = Repeat(quick)
    n, relu_name, copy_name, batches = sizes(quick)
    rng = np.random.RandomState(7)
    last = [None]

    def timed(fn, *args):
        def call():
            last[0] = fn(*args)

        return call

    def sync():
        jax.block_until_ready(last[0])

    # power(x, 100)
    name = "power_10x10"
    x_host = rng.rand(10, 10).astype(np.float32)
    x_host /= x_host.sum(1, keepdims=True)
    x = jax.device_put(x_host, dev)

    @jax.jit
    def power(t):
        r = jnp.eye(10, dtype=t.dtype)
        for _ in range(100):
            r = t @ r
        return r

    want = np.eye(10)
    for _ in range(100):
        want = x_host.astype(np.float64) @ want
    res.check(name, "jax_jit", np.asarray(power(x), dtype=np.float64), want)
    res.add(name, "jax_jit", "back_to_back", time_gpu(timed(power, x), sync, False, rep) * 1e6, "us")
    res.add(name, "jax_jit", "synced", time_gpu(timed(power, x), sync, True, rep) * 1e6, "us")

    # relu chain
    nbytes = 2.0 * 4.0 * n
    x_host = rng.randn(n).astype(np.float32)
    x = jax.device_put(x_host, dev)
    chain = jax.jit(lambda t: jax.nn.relu(t * A + B) * C)
    want = np.maximum(x_host.astype(np.float64) * A + B, 0) * C
    res.check(relu_name, "jax_jit", np.asarray(chain(x), dtype=np.float64), want)
    del x_host, want
    s = time_gpu(timed(chain, x), sync, True, rep)
    res.add(relu_name, "jax_jit", "synced", s * 1e6, "us")
    res.add(relu_name, "jax_jit", "back_to_back", time_gpu(timed(chain, x), sync, False, rep) * 1e6, "us")
    res.add(relu_name, "jax_jit", "bandwidth", nbytes / s / 1e9, "GB/s")
    res.jax_relu_s = s
    del x
    last[0] = None

    # the MLP training step, parameters donated so the update is in place
    def loss_fn(params, xb, yb):
        h = xb
        for l in range(3):
            h = h @ params[2 * l] + params[2 * l + 1]
            if l < 2:
                h = jax.nn.relu(h)
        return -jnp.mean(jnp.sum(yb * jax.nn.log_softmax(h, axis=1), axis=1))

    def step(params, xb, yb):
        loss, grads = jax.value_and_grad(loss_fn)(params, xb, yb)
        return [p - LR * g for p, g in zip(params, grads)], loss

    step_jit = jax.jit(step, donate_argnums=0)
    for batch in batches:
        name = f"mlp_step_b{batch}"
        r = np.random.RandomState(10)
        params_host = []
        for l in range(3):
            params_host.append((r.randn(DIMS[l], DIMS[l + 1]) * math.sqrt(2.0 / DIMS[l])).astype(np.float32))
            params_host.append(np.zeros(DIMS[l + 1], np.float32))
        xb = jax.device_put(r.randn(batch, DIMS[0]).astype(np.float32), dev)
        yb = jax.device_put(np.eye(DIMS[3], dtype=np.float32)[r.randint(0, DIMS[3], batch)], dev)
        # the jitted step against the same step run op by op (jax.disable_jit) from equal parameters
        state = {"p": [jax.device_put(p, dev) for p in params_host]}
        with jax.disable_jit():
            want_p, want_loss = step([jax.device_put(p, dev) for p in params_host], xb, yb)
        state["p"], loss = step_jit(state["p"], xb, yb)
        res.check(name + " loss", "jax_jit", np.float64(float(loss)), np.float64(float(want_loss)))
        for p, q in zip(state["p"], want_p):
            res.check(name + " params", "jax_jit", np.asarray(p, np.float64), np.asarray(q, np.float64))

        def call():
            state["p"], last[0] = step_jit(state["p"], xb, yb)

        def sync_step():
            jax.block_until_ready(state["p"])

        res.add(name, "jax_jit", "synced", time_gpu(call, sync_step, True, rep) * 1e3, "ms")
        res.add(name, "jax_jit", "back_to_back", time_gpu(call, sync_step, False, rep) * 1e3, "ms")
        del state, xb, yb
        last[0] = None


def child(section, quick, out):
    """One framework in this process; writes its results to `out`."""
    res = Results(out)
    res.save()
    try:
        (run_torch if section == "torch" else run_jax)(quick, res)
    except ImportError as e:
        res.note(f"{section} is not installed ({e}): its columns are skipped")
    except Exception as e:
        res.note(f"{section} failed: {type(e).__name__}: {str(e)[:500]}")
        traceback.print_exc()
    res.save()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes and few iterations")
    ap.add_argument("--json", metavar="FILE", help="write the results as JSON")
    ap.add_argument("--section", choices=["torch", "jax"], help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.section:
        child(args.section, args.quick, args.out)
        return 0

    rep = Repeat(args.quick)
    print(f"gpu_reference{' --quick' if args.quick else ''}: PyTorch and JAX, float32, TF32 off; median time per call "
          f"of {rep.reps} batches after {rep.warmup} warm-up calls\n")
    print(f"  {'workload':18} {'impl':13} {'metric':15} {'value':>12}")
    parts = {}
    for section in ["torch", "jax"]:
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tmp:
            path = tmp.name
        try:
            cmd = [sys.executable, os.path.abspath(__file__), "--section", section, "--out", path]
            if args.quick:
                cmd.append("--quick")
            try:
                rc = subprocess.run(cmd, timeout=CHILD_TIMEOUT_S).returncode
            except subprocess.TimeoutExpired:
                rc = f"a timeout ({CHILD_TIMEOUT_S} s)"
            try:
                with open(path) as f:
                    parts[section] = json.load(f)
            except (OSError, ValueError):
                parts[section] = {"rows": [], "notes": [], "verified": True}
            if rc != 0:
                note = f"{section}: the child process ended with {rc}: the numbers above are all it measured"
                parts[section]["notes"].append(note)
                print(f"  note: {note}")
        finally:
            os.unlink(path)

    rows = parts["torch"]["rows"] + parts["jax"]["rows"]
    notes = parts["torch"]["notes"] + parts["jax"]["notes"]
    # JAX's relu chain as a fraction of the copy bandwidth PyTorch measured in this run
    copy_s, jax_relu_s = parts["torch"].get("copy_s"), parts["jax"].get("jax_relu_s")
    n, relu_name, _, _ = sizes(args.quick)
    if copy_s and jax_relu_s:
        row = {"name": relu_name, "impl": "jax_jit", "metric": "copy_fraction", "value": copy_s / jax_relu_s,
               "unit": "fraction"}
        rows.append(row)
        print(f"  {relu_name:18} {'jax_jit':13} {'copy_fraction':15} {row['value']:12.3f} fraction "
              "(of PyTorch's copy)")
    verified = all(p.get("verified", True) for p in parts.values())
    device = parts["torch"].get("device") or parts["jax"].get("device")
    versions = {**parts["torch"].get("versions", {}), **parts["jax"].get("versions", {})}
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"tool": "reference", "device": device, "quick": args.quick, "tf32": False,
                       "versions": versions, "verified": verified, "notes": notes, "results": rows}, f, indent=1)
    if notes:
        print("\nnotes:\n" + "\n".join("  " + s for s in notes))
    return 0 if verified else 1


if __name__ == "__main__":
    sys.exit(main())
