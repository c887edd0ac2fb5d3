"""The transformers + peft peer of scripts/bench-sharing.mjs: the same k-fold job as its plain
arm (the same prompt token ids, folds, epochs and micro-batches of pairs, read from the job file
the bench writes) in a plain PyTorch loop: LlamaForSequenceClassification + peft DoRA on every
projection, AdamW, linear warmup/decay, gradient clipping, a validation pass after each epoch and
a test pass per fold. Prints one JSON line: wall seconds, steps, tokens computed, peak RSS."""

import argparse
import copy
import json
import math
import os
import time

import torch
from peft import LoraConfig, get_peft_model
from transformers import LlamaForSequenceClassification

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def peak_rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def load_base(path, pad_token_id):
    kwargs = {"num_labels": 1, "dtype": torch.float32, "attn_implementation": "sdpa"}
    if path.endswith(".gguf"):
        model = LlamaForSequenceClassification.from_pretrained(
            os.path.dirname(path), gguf_file=os.path.basename(path), **kwargs
        )
    else:
        model = LlamaForSequenceClassification.from_pretrained(path, **kwargs)
    model.config.pad_token_id = pad_token_id
    return model


def collate(ids, indices, pad):
    length = max(len(ids[i]) for i in indices)
    batch = torch.full((len(indices), length), pad, dtype=torch.long)
    mask = torch.zeros((len(indices), length), dtype=torch.long)
    for row, i in enumerate(indices):
        batch[row, : len(ids[i])] = torch.tensor(ids[i])
        mask[row, : len(ids[i])] = 1
    return batch, mask


def predict(model, ids, indices, pad, batch_size, counter):
    model.eval()
    order = sorted(indices, key=lambda i: len(ids[i]))
    out = {}
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            batch, mask = collate(ids, chunk, pad)
            counter["tokens"] += int(mask.sum())
            probs = torch.sigmoid(model(input_ids=batch, attention_mask=mask).logits[:, 0])
            out.update(zip(chunk, probs.tolist()))
    model.train()
    return [out[i] for i in indices]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("job")
    args = parser.parse_args()
    with open(args.job) as f:
        job = json.load(f)
    if job["threads"]:
        torch.set_num_threads(job["threads"])
    torch.manual_seed(job["seed"])
    ids, labels, pad = job["ids"], job["labels"], job["padTokenId"]
    started = time.perf_counter()
    base = load_base(job["model"], pad)
    counter = {"tokens": 0}
    steps = 0
    for fold in job["folds"]:
        config = LoraConfig(
            r=job["r"],
            lora_alpha=job["alpha"],
            lora_dropout=0.0,
            target_modules=TARGETS,
            use_dora=True,
            task_type="SEQ_CLS",
        )
        model = get_peft_model(copy.deepcopy(base), config)
        model.train()
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=job["lr"], weight_decay=0.0)
        accumulation = job["accumulation"]
        total = sum(math.ceil(len(epoch) / accumulation) for epoch in fold["epochs"])
        warmup = round(job["warmupRatio"] * total)

        def lr_at(step):
            if step < warmup:
                return (step + 1) / max(1, warmup)
            return max(0.0, (total - step) / max(1, total - warmup))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_at)
        loss_fn = torch.nn.BCEWithLogitsLoss()
        for epoch in fold["epochs"]:
            for start in range(0, len(epoch), accumulation):
                group = epoch[start : start + accumulation]
                optimizer.zero_grad()
                for micro in group:
                    batch, mask = collate(ids, micro, pad)
                    counter["tokens"] += int(mask.sum())
                    target = torch.tensor([float(labels[i]) for i in micro])
                    logits = model(input_ids=batch, attention_mask=mask).logits[:, 0]
                    (loss_fn(logits, target) / len(group)).backward()
                torch.nn.utils.clip_grad_norm_(params, job["maxGradNorm"])
                optimizer.step()
                scheduler.step()
                steps += 1
            predict(model, ids, fold["validation"], pad, job["inferenceBatch"], counter)
        predict(model, ids, fold["test"], pad, job["inferenceBatch"], counter)
        del model, optimizer
    print(
        json.dumps(
            {
                "wallSeconds": time.perf_counter() - started,
                "steps": steps,
                "tokens": counter["tokens"],
                "tokenLayers": counter["tokens"] * base.config.num_hidden_layers,
                "peakRssMb": peak_rss_mb(),
            }
        )
    )


if __name__ == "__main__":
    main()
