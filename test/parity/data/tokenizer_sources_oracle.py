"""Oracle for the tokenizer-source parity test: transformers' tokenizers for a SentencePiece
tokenizer.model and for GGUF files, on the same texts as the TypeScript side.

stdin: {
  "workdir": a fresh directory,
  "texts": [...],
  "corpus": [...]              training text for the SentencePiece model,
  "spm_configs": {name: tokenizer_config.json content or null},
  "smollm2": path of the SmolLM2 GGUF or null,
}
It trains <workdir>/spm/tokenizer.model (SentencePiece BPE with byte fallback, Llama-2's
normalisation settings), writes one directory per tokenizer_config variant beside it and a
vocab-only GGUF `llama` tokenizer made from the same model, and answers, for every tokenizer:
ids with and without special tokens, the decoded ids, the tokenizer.json transformers built, and
for the GGUFs the tokenizer metadata as the TypeScript side reads it. A third GGUF holds a
byte-level BPE trained here with Llama 3's pre-tokenizer (`gpt2` model, `llama-bpe` pre), and
<workdir>/notok/model.gguf has no tokenizer at all.
"""
import json
import os
import shutil
import sys

import gguf
import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2
from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, LlamaTokenizerFast
from transformers.integrations.gguf.gguf_tokenizer_mapping import GGUF_PRE_TOKENIZER_SPLITS


def encode_all(hf, texts):
    ids = [hf(t)["input_ids"] for t in texts]
    return {
        "ids": ids,
        "raw": [hf(t, add_special_tokens=False)["input_ids"] for t in texts],
        "decoded": [hf.decode(i, skip_special_tokens=True) for i in ids],
        "json": json.loads(hf.backend_tokenizer.to_str()),
        "class": type(hf).__name__,
        "bos_token_id": hf.bos_token_id,
        "eos_token_id": hf.eos_token_id,
        "unk_token_id": hf.unk_token_id,
        "pad_token_id": hf.pad_token_id,
        "vocab_size": len(hf),
    }


def gguf_metadata(path):
    """The tokenizer keys of a GGUF, as JSON values (arrays as lists)."""
    reader = gguf.GGUFReader(path)
    out = {}
    for key, field in reader.fields.items():
        if key.startswith("tokenizer.") or key == "general.architecture":
            out[key] = field.contents()
    return out


def train_spm(workdir, corpus):
    model_dir = os.path.join(workdir, "spm")
    os.makedirs(model_dir)
    corpus_path = os.path.join(workdir, "corpus.txt")
    with open(corpus_path, "w", encoding="utf-8") as f:
        f.write("\n".join(corpus))
    # Llama-2's tokenizer.model settings: identity normalisation, whitespace kept, digits split,
    # byte fallback. One user-defined symbol exercises that piece type.
    spm.SentencePieceTrainer.train(
        input=corpus_path,
        model_prefix=os.path.join(model_dir, "tokenizer"),
        model_type="bpe",
        vocab_size=1200,
        byte_fallback=True,
        split_digits=True,
        allow_whitespace_only_pieces=True,
        remove_extra_whitespaces=False,
        normalization_rule_name="identity",
        character_coverage=0.9995,
        user_defined_symbols=["<criterion>"],
        num_threads=1,
        minloglevel=2,
    )
    return os.path.join(model_dir, "tokenizer.model")


def write_gguf_without_tokenizer(gguf_path):
    writer = gguf.GGUFWriter(gguf_path, "llama")
    writer.add_block_count(1)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def write_llama_gguf(model_path, gguf_path):
    """A vocab-only GGUF with the `llama` tokenizer of a SentencePiece model, as llama.cpp's
    converter writes it (tokens, scores, token types, special ids; no merges)."""
    proto = sentencepiece_model_pb2.ModelProto()
    with open(model_path, "rb") as f:
        proto.ParseFromString(f.read())
    writer = gguf.GGUFWriter(gguf_path, "llama")
    writer.add_block_count(1)
    writer.add_context_length(128)
    writer.add_embedding_length(8)
    writer.add_feed_forward_length(16)
    writer.add_head_count(2)
    writer.add_head_count_kv(2)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(len(proto.pieces))
    writer.add_tokenizer_model("llama")
    writer.add_token_list([p.piece for p in proto.pieces])
    writer.add_token_scores([p.score for p in proto.pieces])
    writer.add_token_types([p.type for p in proto.pieces])
    writer.add_bos_token_id(proto.trainer_spec.bos_id)
    writer.add_eos_token_id(proto.trainer_spec.eos_id)
    writer.add_unk_token_id(proto.trainer_spec.unk_id)
    writer.add_add_bos_token(True)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def write_llama3_gguf(corpus, gguf_path):
    """A vocab-only GGUF `gpt2` tokenizer with Llama 3's pre-tokenizer (`llama-bpe`): byte-level
    BPE trained here with `tokenizers` on Llama 3's split, written as llama.cpp's converter does."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(GGUF_PRE_TOKENIZER_SPLITS["llama-bpe"]), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    specials = ["<|begin_of_text|>", "<|end_of_text|>"]
    trainer = trainers.BpeTrainer(
        vocab_size=1500,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(corpus, trainer)
    model = json.loads(tokenizer.to_str())["model"]
    tokens = [token for token, _ in sorted(model["vocab"].items(), key=lambda kv: kv[1])]
    writer = gguf.GGUFWriter(gguf_path, "llama")
    writer.add_block_count(1)
    writer.add_context_length(128)
    writer.add_embedding_length(8)
    writer.add_feed_forward_length(16)
    writer.add_head_count(2)
    writer.add_head_count_kv(2)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(len(tokens))
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("llama-bpe")
    writer.add_token_list(tokens)
    writer.add_token_types([3 if t in specials else 1 for t in tokens])
    writer.add_token_merges([" ".join(m) if isinstance(m, list) else m for m in model["merges"]])
    writer.add_bos_token_id(tokens.index(specials[0]))
    writer.add_eos_token_id(tokens.index(specials[1]))
    writer.add_add_bos_token(True)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def main():
    request = json.load(sys.stdin)
    workdir, texts = request["workdir"], request["texts"]
    out = {}

    model_path = train_spm(workdir, request["corpus"])
    sp = spm.SentencePieceProcessor(model_file=model_path)
    out["sentencepiece"] = {"raw": [sp.encode(t) for t in texts]}
    out["spm"] = {}
    for name, config in request["spm_configs"].items():
        variant = os.path.join(workdir, name)
        os.makedirs(variant)
        shutil.copy(model_path, variant)
        if config is not None:
            with open(os.path.join(variant, "tokenizer_config.json"), "w", encoding="utf-8") as f:
                json.dump(config, f)
        result = encode_all(LlamaTokenizerFast.from_pretrained(variant), texts)
        result["dir"] = variant
        out["spm"][name] = result

    llama_gguf = os.path.join(workdir, "gguf", "spm-tokenizer.gguf")
    os.makedirs(os.path.dirname(llama_gguf))
    write_llama_gguf(model_path, llama_gguf)
    result = encode_all(
        AutoTokenizer.from_pretrained(os.path.dirname(llama_gguf), gguf_file="spm-tokenizer.gguf"), texts
    )
    result["path"] = llama_gguf
    result["metadata"] = gguf_metadata(llama_gguf)
    out["gguf_llama"] = result

    os.makedirs(os.path.join(workdir, "notok"))
    write_gguf_without_tokenizer(os.path.join(workdir, "notok", "model.gguf"))

    llama3_gguf = os.path.join(workdir, "llama3", "llama3-tokenizer.gguf")
    os.makedirs(os.path.dirname(llama3_gguf))
    write_llama3_gguf(request["corpus"], llama3_gguf)
    result = encode_all(
        AutoTokenizer.from_pretrained(os.path.dirname(llama3_gguf), gguf_file="llama3-tokenizer.gguf"), texts
    )
    result["path"] = llama3_gguf
    result["metadata"] = gguf_metadata(llama3_gguf)
    out["gguf_llama3"] = result

    if request.get("smollm2"):
        path = request["smollm2"]
        hf = AutoTokenizer.from_pretrained(os.path.dirname(path), gguf_file=os.path.basename(path))
        result = encode_all(hf, texts)
        result["metadata"] = gguf_metadata(path)
        # The same tokenizer with llama.cpp's pre-tokenizer for `smollm` (each digit split off
        # first, then GPT-2's pattern), which transformers' GGUF loader does not apply.
        split = Tokenizer.from_str(hf.backend_tokenizer.to_str())
        split.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
        )
        result["llamacpp_split_raw"] = [split.encode(t, add_special_tokens=False).ids for t in texts]
        out["smollm2"] = result

    json.dump(out, sys.stdout)


main()
