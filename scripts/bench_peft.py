"""transformers + peft side of scripts/bench-native.mjs: one configuration per process, so that
its peak memory (VmHWM on the CPU, torch.cuda.max_memory_allocated on a GPU) is its own. Prints
one JSON line.

Modes:
  train      train steps (forward, backward, clip, AdamW) of a DoRA or LoRA adapter
  forward    batch-1 forward of the merged model (merge_and_unload)
  floor      the projection GEMMs + attention alone (CPU fp32; see gemm_floor)
  make-model write a random LlamaForSequenceClassification checkpoint (--config JSON, --out DIR)
             in --dtype, initialised on --device (a GPU makes a 7B one in seconds)
"""

import argparse
import json
import statistics
import time

import torch

MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def peak_rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def gemm_floor(args):
    """Time of the dense projection GEMMs that any train step of a frozen-base adapter model must
    run: the forward products x W^T of the seven projections in every layer and the backward
    products dy W that carry the gradient down to layer 0's q/k/v adapters, plus the causal
    attention forward and backward of every layer. Norms, activations, RoPE, the adapters and the
    optimizer are left out, so this is a lower bound."""
    with open(f"{args.model}/config.json") as f:
        config = json.load(f)
    hidden = config["hidden_size"]
    inter = config["intermediate_size"]
    head_dim = hidden // config["num_attention_heads"]
    kv = config["num_key_value_heads"] * head_dim
    tokens = args.batch * args.seq
    # (out, in) of q, k, v, o, gate, up, down
    shapes = [(hidden, hidden), (kv, hidden), (kv, hidden), (hidden, hidden),
              (inter, hidden), (inter, hidden), (hidden, inter)]
    weights = [torch.randn(o, i) * 0.02 for o, i in shapes]
    inputs = {i: torch.randn(tokens, i) for _, i in shapes}
    grads = {o: torch.randn(tokens, o) for o, _ in shapes}
    layers = config["num_hidden_layers"]

    heads = config["num_attention_heads"]
    q = torch.randn(args.batch, heads, args.seq, head_dim, requires_grad=True)
    k = torch.randn(args.batch, kv // head_dim, args.seq, head_dim, requires_grad=True)
    v = torch.randn(args.batch, kv // head_dim, args.seq, head_dim, requires_grad=True)
    dout = torch.randn(args.batch, heads, args.seq, head_dim)

    def attention():
        with torch.enable_grad():
            out = torch.nn.functional.scaled_dot_product_attention(
                q, k, v, is_causal=True, enable_gqa=True)
            out.backward(dout)

    def step():
        for layer in range(layers):
            attention()
            for k, w in enumerate(weights):
                torch.mm(inputs[w.shape[1]], w.t())
                if layer > 0 or k > 2:
                    torch.mm(grads[w.shape[0]], w)

    times = []
    with torch.no_grad():
        for i in range(args.warmup + args.steps):
            start = time.perf_counter()
            step()
            if i >= args.warmup:
                times.append((time.perf_counter() - start) * 1000)
    return {"ms": statistics.median(times), "peakRssMb": peak_rss_mb()}


def make_model(args):
    from transformers import LlamaConfig, LlamaForSequenceClassification

    config = LlamaConfig(**json.loads(args.config))
    torch.manual_seed(0)
    started = time.perf_counter()
    # Built in the target dtype on the target device: no fp32 copy of a 7B model on the host.
    default = torch.get_default_dtype()
    torch.set_default_dtype(DTYPES[args.dtype])
    with torch.device(args.device):
        model = LlamaForSequenceClassification(config)
    torch.set_default_dtype(default)
    model.save_pretrained(args.out, safe_serialization=True)
    params = sum(p.numel() for p in model.parameters())
    print(json.dumps({"ok": True, "parameters": params, "seconds": time.perf_counter() - started}))


def load_model(args):
    from transformers import LlamaForSequenceClassification

    kwargs = {"dtype": DTYPES[args.dtype]}
    if args.attn:
        kwargs["attn_implementation"] = args.attn
    if args.gguf:
        import os

        kwargs["gguf_file"] = os.path.basename(args.gguf)
        kwargs["num_labels"] = 2
        source = os.path.dirname(os.path.abspath(args.gguf))
    else:
        source = args.model
    if args.device.startswith("cuda"):
        # Straight onto the GPU (a 7B model need not pass through host memory); older
        # transformers want accelerate for device_map.
        try:
            return LlamaForSequenceClassification.from_pretrained(
                source, device_map=args.device, **kwargs
            )
        except (ImportError, ValueError):
            pass
    return LlamaForSequenceClassification.from_pretrained(source, **kwargs).to(args.device)


def sync(args):
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", help="a Hugging Face checkpoint directory")
    p.add_argument("--gguf", help="a GGUF file instead (transformers dequantizes it)")
    p.add_argument("--mode", choices=["train", "forward", "floor", "make-model"], required=True)
    p.add_argument("--method", choices=["dora", "lora"], default="dora")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", choices=sorted(DTYPES), default="float32")
    p.add_argument("--attn", default="", help="attn_implementation (default: transformers')")
    p.add_argument("--checkpointing", type=int, default=0)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--r", type=int, default=8)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--config", help="make-model: LlamaConfig keys as JSON")
    p.add_argument("--out", help="make-model: the checkpoint directory")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.mode == "make-model":
        make_model(args)
        return
    if args.mode == "floor":
        print(json.dumps(gemm_floor(args)))
        return
    from peft import LoraConfig, get_peft_model

    cuda = args.device.startswith("cuda")
    model = load_model(args)
    if args.checkpointing:
        model.gradient_checkpointing_enable()
    config = LoraConfig(
        r=args.r,
        lora_alpha=2 * args.r,
        lora_dropout=0.0,
        use_dora=args.method == "dora",
        target_modules=MODULES,
        task_type="SEQ_CLS",
    )
    model = get_peft_model(model, config)
    vocab = model.config.vocab_size
    times = []
    if args.mode == "train":
        model.train()
        ids = torch.randint(3, vocab, (args.batch, args.seq), device=args.device)
        mask = torch.ones_like(ids)
        labels = torch.randint(0, 2, (args.batch,), device=args.device)
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=1e-4)
        for i in range(args.warmup + args.steps):
            sync(args)
            start = time.perf_counter()
            out = model(input_ids=ids, attention_mask=mask).logits
            loss = torch.nn.functional.cross_entropy(out.float(), labels)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            sync(args)
            if i >= args.warmup:
                times.append((time.perf_counter() - start) * 1000)
    else:
        model = model.merge_and_unload()
        model.eval()
        ids = torch.randint(3, vocab, (1, args.seq), device=args.device)
        mask = torch.ones_like(ids)
        with torch.inference_mode():
            for i in range(args.warmup + args.steps):
                sync(args)
                start = time.perf_counter()
                model(input_ids=ids, attention_mask=mask)
                sync(args)
                if i >= args.warmup:
                    times.append((time.perf_counter() - start) * 1000)
    result = {"ms": statistics.median(times), "peakRssMb": peak_rss_mb()}
    if cuda:
        result["peakGpuBytes"] = torch.cuda.max_memory_allocated()
        result["gpuName"] = torch.cuda.get_device_name()
        result["torch"] = torch.__version__
    print(json.dumps(result))


if __name__ == "__main__":
    main()
