"""Oracle for the tokenizer parity test: ids from Python `tokenizers` and from transformers.

stdin: {"dir": model dir with tokenizer.json, "texts": [...]}; stdout: {"tokenizers": [[ids]], "transformers": [[ids]] | null}.
"""
import json
import sys

from tokenizers import Tokenizer

request = json.load(sys.stdin)
tok = Tokenizer.from_file(request["dir"] + "/tokenizer.json")
out = {"tokenizers": [tok.encode(t).ids for t in request["texts"]], "transformers": None}
try:
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(request["dir"])
    out["transformers"] = [hf(t)["input_ids"] for t in request["texts"]]
    out["transformers_class"] = type(hf).__name__
    out["pad_token_id"] = hf.pad_token_id
except ImportError:
    pass
json.dump(out, sys.stdout)
