"""transformers + peft DoRA side of scripts/bench-native.mjs: one configuration per process so
peak RSS (VmHWM) belongs to it alone. Prints one JSON line."""

import argparse
import json
import statistics
import time

import torch
from peft import LoraConfig, get_peft_model
from transformers import LlamaForSequenceClassification


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


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--mode", choices=["train", "forward", "floor"], required=True)
    p.add_argument("--checkpointing", type=int, default=0)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--r", type=int, default=8)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=0)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.mode == "floor":
        print(json.dumps(gemm_floor(args)))
        return
    model = LlamaForSequenceClassification.from_pretrained(args.model, dtype=torch.float32)
    if args.checkpointing:
        model.gradient_checkpointing_enable()
    config = LoraConfig(
        r=args.r,
        lora_alpha=2 * args.r,
        lora_dropout=0.0,
        use_dora=True,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        task_type="SEQ_CLS",
    )
    model = get_peft_model(model, config)
    vocab = model.config.vocab_size
    times = []
    if args.mode == "train":
        model.train()
        ids = torch.randint(3, vocab, (args.batch, args.seq))
        mask = torch.ones_like(ids)
        labels = torch.randint(0, 2, (args.batch,))
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=1e-4)
        for i in range(args.warmup + args.steps):
            start = time.perf_counter()
            out = model(input_ids=ids, attention_mask=mask).logits
            loss = torch.nn.functional.cross_entropy(out, labels)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            if i >= args.warmup:
                times.append((time.perf_counter() - start) * 1000)
    else:
        model = model.merge_and_unload()
        model.eval()
        ids = torch.randint(3, vocab, (1, args.seq))
        mask = torch.ones_like(ids)
        with torch.inference_mode():
            for i in range(args.warmup + args.steps):
                start = time.perf_counter()
                model(input_ids=ids, attention_mask=mask)
                if i >= args.warmup:
                    times.append((time.perf_counter() - start) * 1000)
    print(json.dumps({"ms": statistics.median(times), "peakRssMb": peak_rss_mb()}))


if __name__ == "__main__":
    main()
