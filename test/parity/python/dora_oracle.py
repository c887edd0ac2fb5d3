"""Oracle for the native Classifier parity tests: transformers' LlamaForSequenceClassification
with a peft DoRA adapter, fp32, eager attention, dropout 0. Called from jest (test/parity) and
from the GPU tests (test/gpu); prints JSON.

Subcommands:
  make-model   --dir D --config JSON --seed S [--std X]   write a random HF checkpoint
  make-adapter --model D --out A --dora JSON --seed S      a peft DoRA adapter with B != 0
  logits       --model D --adapter A --batch F [--merge]   pooled logits (B, C)
  train        --model D --adapter A --batch F --steps N --lr X --wd X --clip X --out A2
  compare      --a F1 --b F2                               max |diff| per tensor of 2 safetensors

logits, grads and train take --device (cpu, cuda, cuda:N; default cpu) and --dtype (float32 or
bfloat16, the frozen base's dtype; default float32). With bfloat16 the adapters stay fp32 (peft's
autocast_adapter_dtype) and so does the trained score head, cast here to mirror mentallam, whose
head is fp32 on the fp32-cast pooled hidden state; the optimizer then works in fp32 throughout.
"""

import argparse
import json
import sys

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import load_file
from transformers import LlamaConfig, LlamaForSequenceClassification


DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def load_base(model_dir, dtype="float32", device="cpu"):
    model = LlamaForSequenceClassification.from_pretrained(
        model_dir, dtype=DTYPES[dtype], attn_implementation="eager"
    )
    return model.to(device)


def fp32_score_head(model):
    """The trained copy of the score head in fp32, fed the hidden state cast to fp32."""
    for module in model.modules():
        if hasattr(module, "modules_to_save"):
            for head in module.modules_to_save.values():
                head.float()
                head.register_forward_pre_hook(lambda _m, args: (args[0].float(),))


def make_model(args):
    config = json.loads(args.config)
    config.setdefault("torch_dtype", "float32")
    cfg = LlamaConfig(**config)
    torch.manual_seed(args.seed)
    model = LlamaForSequenceClassification(cfg)
    # Larger weights than the default 0.02 so logits are O(1) and differences mean something.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1 + 0.1 * torch.randn_like(p))
            else:
                p.normal_(0, args.std)
    model.save_pretrained(args.dir, safe_serialization=True)
    print(json.dumps({"ok": True}))


def make_adapter(args):
    dora = json.loads(args.dora)
    base = load_base(args.model)
    config = LoraConfig(
        r=dora["r"],
        lora_alpha=dora["alpha"],
        lora_dropout=dora.get("dropout", 0.0),
        target_modules=dora["targetModules"],
        use_dora=True,
        use_rslora=dora.get("useRslora", False),
        task_type="SEQ_CLS",
        # peft's own spelling: an int or a list; layers_pattern left to peft's default matching.
        layers_to_transform=dora.get("layers"),
    )
    torch.manual_seed(args.seed)
    model = get_peft_model(base, config)
    # peft starts with B = 0 (a no-op adapter); perturb B, m and the score head so the forward
    # exercises every DoRA term.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not p.requires_grad:
                continue
            if "lora_B" in name:
                p.normal_(0, 0.05)
            elif "lora_magnitude_vector" in name:
                p.mul_(1 + 0.1 * torch.randn_like(p))
            elif "score" in name:
                p.normal_(0, 0.1)
    model.save_pretrained(args.out)
    print(json.dumps({"ok": True}))


def read_batch(path, device="cpu"):
    with open(path) as f:
        b = json.load(f)
    shape = (b["batchSize"], b["seqLen"])
    ids = torch.tensor(b["inputIds"], dtype=torch.long).view(shape).to(device)
    mask = torch.tensor(b["attentionMask"], dtype=torch.long).view(shape).to(device)
    labels = torch.tensor(b["labels"], dtype=torch.long).to(device) if "labels" in b else None
    return ids, mask, labels


def peft_model(args, trainable):
    base = load_base(args.model, args.dtype, args.device)
    model = PeftModel.from_pretrained(base, args.adapter, is_trainable=trainable)
    model.to(args.device)
    if args.dtype != "float32":
        fp32_score_head(model)
    return model


def adapted_layers(model):
    """Indices of the decoder layers peft put a DoRA adapter on."""
    layers = set()
    for name, _ in model.named_parameters():
        if "lora_A" in name:
            layers.add(int(name.split(".layers.")[1].split(".")[0]))
    return sorted(layers)


def logits(args):
    model = peft_model(args, trainable=False)
    model.eval()
    # Before a merge, which removes the adapter modules.
    layers = adapted_layers(model)
    if args.merge:
        model = model.merge_and_unload()
    results = []
    for path in args.batch:
        ids, mask, _ = read_batch(path, args.device)
        with torch.no_grad():
            out = model(input_ids=ids, attention_mask=mask).logits
        results.append(out.float().flatten().tolist())
    print(json.dumps({"logits": results, "layers": layers}))


def train(args):
    model = peft_model(args, trainable=True)
    model.train()  # dropout is 0, so train mode only matters for bookkeeping
    ids, mask, labels = read_batch(args.batch, args.device)
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    decay = [p for n, p in params if "lora_magnitude_vector" not in n]
    no_decay = [p for n, p in params if "lora_magnitude_vector" in n]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": args.wd}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr,
        eps=args.eps,
    )
    losses, norms = [], []
    for _ in range(args.steps):
        optimizer.zero_grad()
        out = model(input_ids=ids, attention_mask=mask).logits
        loss = torch.nn.functional.cross_entropy(out.float(), labels)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_([p for _, p in params], args.clip)
        optimizer.step()
        losses.append(loss.item())
        norms.append(norm.item())
    model.save_pretrained(args.out)
    print(json.dumps({"losses": losses, "gradNorms": norms}))


def peft_key(name):
    """named_parameters name -> the key peft saves it under."""
    name = name.replace("lora_magnitude_vector.default.weight", "lora_magnitude_vector")
    name = name.replace(".modules_to_save.default.", ".")
    return name.replace(".default.", ".")


def grads(args):
    model = peft_model(args, trainable=True)
    model.train()
    ids, mask, labels = read_batch(args.batch[0], args.device)
    out = model(input_ids=ids, attention_mask=mask).logits
    loss = torch.nn.functional.cross_entropy(out.float(), labels)
    loss.backward()
    result = {
        peft_key(n): p.grad.float().flatten().tolist()
        for n, p in model.named_parameters()
        if p.requires_grad
    }
    print(json.dumps({"loss": loss.item(), "grads": result}))


def compare(args):
    a = load_file(args.a)
    b = load_file(args.b)
    diffs = {}
    missing = sorted(set(a) ^ set(b))
    for key in sorted(set(a) & set(b)):
        if a[key].shape != b[key].shape:
            diffs[key] = float("inf")
        else:
            diffs[key] = (a[key].double() - b[key].double()).abs().max().item()
    print(json.dumps({"diffs": diffs, "missing": missing}))


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    # Where the peft model runs, and its frozen base's dtype.
    placed = argparse.ArgumentParser(add_help=False)
    placed.add_argument("--device", default="cpu")
    placed.add_argument("--dtype", choices=sorted(DTYPES), default="float32")
    p = sub.add_parser("make-model")
    p.add_argument("--dir", required=True)
    p.add_argument("--config", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--std", type=float, default=0.1)
    p = sub.add_parser("make-adapter")
    p.add_argument("--model", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--dora", required=True)
    p.add_argument("--seed", type=int, default=0)
    p = sub.add_parser("logits", parents=[placed])
    p.add_argument("--model", required=True)
    p.add_argument("--adapter", required=True)
    p.add_argument("--batch", required=True, nargs="+")
    p.add_argument("--merge", action="store_true", help="merge_and_unload() first")
    p = sub.add_parser("grads", parents=[placed])
    p.add_argument("--model", required=True)
    p.add_argument("--adapter", required=True)
    p.add_argument("--batch", required=True, nargs=1)
    p = sub.add_parser("train", parents=[placed])
    p.add_argument("--model", required=True)
    p.add_argument("--adapter", required=True)
    p.add_argument("--batch", required=True)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--lr", type=float, required=True)
    p.add_argument("--wd", type=float, default=0.0)
    p.add_argument("--clip", type=float, default=1.0)
    p.add_argument("--eps", type=float, default=1e-8)
    p.add_argument("--out", required=True)
    p = sub.add_parser("compare")
    p.add_argument("--a", required=True)
    p.add_argument("--b", required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    # fp32 means fp32 on a GPU too: no TF32 matmuls (the default, made explicit).
    torch.set_float32_matmul_precision("highest")
    {
        "make-model": make_model,
        "make-adapter": make_adapter,
        "logits": logits,
        "train": train,
        "grads": grads,
        "compare": compare,
    }[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
