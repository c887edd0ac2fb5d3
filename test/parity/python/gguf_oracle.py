"""Oracle for the native GGUF parity tests: gguf-py (the `gguf` package) writes the files and
dequantizes them, transformers loads a GGUF Llama (`gguf_file=`) with peft on top. Called from
jest; prints JSON on its last line.

Subcommands:
  make-tensors --out F --dump D --seed S
      a GGUF with tensors of every type mentallam decodes (plus one it does not) and metadata of
      every value type; gguf.quants.dequantize of each tensor, read back from the file, goes to
      D/<name>.f32 (float32, little-endian)
  logits --gguf F --adapter-in A --adapter-out A2 --seed S --batch B... [--dump D --names N...]
      LlamaForSequenceClassification from the GGUF (fp32, eager) + the peft adapter A (its score
      head), lora_B and magnitudes perturbed from S and saved to A2; pooled logits per batch file;
      base weights N (Hugging Face names, as transformers loaded them) to D/<name>.f32
"""

import argparse
import json
import os
import sys
from pathlib import Path

import gguf
import numpy as np
from gguf import GGMLQuantizationType as Q

# Types gguf-py can quantize to. The K-quants have no quantizer there, so their blocks are
# crafted: random bits with finite f16 scales (at these byte offsets of a block), which exercises
# every bit of the layout. The quantizable block types also get a crafted tensor ("<type>.bits"),
# since a quantizer never produces some codes (Q8_0's -128, for one).
QUANTIZABLE = [Q.BF16, Q.Q8_0, Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1]
SCALES = {
    Q.Q8_0: (0,),
    Q.Q4_0: (0,),
    Q.Q4_1: (0, 2),
    Q.Q5_0: (0,),
    Q.Q5_1: (0, 2),
    Q.Q4_K: (0, 2),
    Q.Q5_K: (0, 2),
    Q.Q6_K: (208,),
    Q.Q2_K: (80, 82),
}
CRAFTED = [Q.Q4_K, Q.Q5_K, Q.Q6_K, Q.Q2_K]


def crafted_blocks(rng, qtype, rows, cols):
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    n_blocks = cols // block
    raw = rng.integers(0, 256, size=(rows, n_blocks, size), dtype=np.uint8)
    for offset in SCALES[qtype]:
        scale = (rng.standard_normal((rows, n_blocks)) * 0.05).astype(np.float16)
        raw[:, :, offset : offset + 2] = scale.view(np.uint8).reshape(rows, n_blocks, 2)
    return raw.reshape(rows, n_blocks * size)


def special_values():
    """Values whose conversion is easy to get wrong: signed zero, subnormals, inf, NaN."""
    values = [0.0, -0.0, 1.0, -2.5, 65504.0, 6e-8, -6e-8, 1e-5, float("inf"), float("-inf")]
    values += [float("nan"), 3.0e38, 1e-40, -1e-45]
    return np.array(values + [0.25] * (16 - len(values)), dtype=np.float32).reshape(2, 8)


def make_tensors(args):
    rng = np.random.default_rng(args.seed)
    writer = gguf.GGUFWriter(args.out, "llama")
    # Metadata of every value type, nested arrays included.
    writer.add_uint8("test.u8", 200)
    writer.add_int8("test.i8", -100)
    writer.add_uint16("test.u16", 60000)
    writer.add_int16("test.i16", -30000)
    writer.add_uint32("test.u32", 4000000000)
    writer.add_int32("test.i32", -2000000000)
    writer.add_float32("test.f32", 0.1)
    writer.add_uint64("test.u64", 2**60 + 1)
    writer.add_int64("test.i64", -(2**40))
    writer.add_float64("test.f64", 0.1)
    writer.add_bool("test.bool", True)
    writer.add_string("test.string", "héllo wörld ✓")
    writer.add_array("test.strings", ["a", "", "ünïcode", "<0x0A>"])
    array = gguf.GGUFValueType.ARRAY
    writer.add_key_value("test.floats", [0.5, -1.25, 3.0], array, gguf.GGUFValueType.FLOAT32)
    writer.add_key_value("test.ints", [1, -2, 3], array, gguf.GGUFValueType.INT32)
    writer.add_key_value("test.u64s", [1, 2**63], array, gguf.GGUFValueType.UINT64)
    writer.add_key_value("test.bools", [True, False, True], array, gguf.GGUFValueType.BOOL)
    writer.add_key_value("test.nested", [[1, 2], [3]], array, array)

    special = special_values()
    writer.add_tensor("F32.special", special)
    with np.errstate(over="ignore"):  # 3e38 becomes inf in float16, on purpose
        writer.add_tensor("F16.special", special.astype(np.float16))
    writer.add_tensor("BF16.special", gguf.quants.quantize(special, Q.BF16), raw_dtype=Q.BF16)
    for shape_name, lead, blocks_per_row in [("2d", (16,), 8), ("3d", (2, 3), 1)]:
        for qtype in [Q.F32, Q.F16, *QUANTIZABLE, *CRAFTED]:
            block = gguf.GGML_QUANT_SIZES[qtype][0]
            shape = (*lead, (block if block > 1 else 8) * blocks_per_row)
            name = f"{qtype.name}.{shape_name}"
            data = (rng.standard_normal(shape) * 0.5).astype(np.float32)
            if qtype == Q.F32:
                raw, raw_dtype = data, None
            elif qtype == Q.F16:
                raw, raw_dtype = data.astype(np.float16), None
            elif qtype in CRAFTED:
                rows = int(np.prod(lead))
                raw = crafted_blocks(rng, qtype, rows, shape[-1]).reshape(*lead, -1)
                raw_dtype = qtype
            else:
                raw, raw_dtype = gguf.quants.quantize(data, qtype), qtype
            writer.add_tensor(name, raw, raw_dtype=raw_dtype)
    for qtype in [Q.Q8_0, Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1]:
        writer.add_tensor(f"{qtype.name}.bits", crafted_blocks(rng, qtype, 16, 256), raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()

    # The expected values come from the file as gguf-py reads it.
    os.makedirs(args.dump, exist_ok=True)
    reader = gguf.GGUFReader(args.out)
    tensors = {}
    for t in reader.tensors:
        decoded = t.tensor_type != Q.Q2_K  # the type mentallam rejects
        expected = gguf.quants.dequantize(t.data, t.tensor_type) if decoded else None
        entry = {"type": t.tensor_type.name, "shape": [int(d) for d in reversed(t.shape)]}
        if expected is not None:
            path = os.path.join(args.dump, t.name + ".f32")
            np.ascontiguousarray(expected, dtype="<f4").tofile(path)
            entry["file"] = path
        tensors[t.name] = entry
    print(json.dumps({"tensors": tensors}))


def read_batch(path):
    import torch

    with open(path) as f:
        b = json.load(f)
    shape = (b["batchSize"], b["seqLen"])
    ids = torch.tensor(b["inputIds"], dtype=torch.long).view(shape)
    mask = torch.tensor(b["attentionMask"], dtype=torch.long).view(shape)
    return ids, mask


def logits(args):
    import torch
    from peft import PeftModel
    from transformers import LlamaForSequenceClassification

    torch.set_num_threads(int(os.environ.get("ORACLE_THREADS", "1")))
    path = Path(args.gguf)
    model = LlamaForSequenceClassification.from_pretrained(
        str(path.parent), gguf_file=path.name, dtype=torch.float32, attn_implementation="eager"
    )
    if args.dump:
        os.makedirs(args.dump, exist_ok=True)
        state = model.state_dict()
        for name in args.names or []:
            path = os.path.join(args.dump, name + ".f32")
            state[name].detach().contiguous().numpy().astype("<f4").tofile(path)
    model = PeftModel.from_pretrained(model, args.adapter_in)
    # The adapter mentallam wrote starts with B = 0; perturb B and the magnitudes so that every
    # DoRA term (and so every base weight through the column norms) shows in the logits.
    torch.manual_seed(args.seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
            elif "lora_magnitude_vector" in name:
                p.mul_(1 + 0.1 * torch.randn_like(p))
    model.save_pretrained(args.adapter_out)
    model.eval()
    results = []
    for batch in args.batch:
        ids, mask = read_batch(batch)
        with torch.no_grad():
            out = model(input_ids=ids, attention_mask=mask).logits
        results.append(out.flatten().tolist())
    print(json.dumps({"logits": results, "padTokenId": model.config.pad_token_id}))


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("make-tensors")
    p.add_argument("--out", required=True)
    p.add_argument("--dump", required=True)
    p.add_argument("--seed", type=int, default=0)
    p = sub.add_parser("logits")
    p.add_argument("--gguf", required=True)
    p.add_argument("--adapter-in", required=True)
    p.add_argument("--adapter-out", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch", required=True, nargs="+")
    p.add_argument("--dump")
    p.add_argument("--names", nargs="*")
    args = parser.parse_args()
    {"make-tensors": make_tensors, "logits": logits}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
