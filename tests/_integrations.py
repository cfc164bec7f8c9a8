"""Data, models and configs shared by the TRL / callback integration tests (tiny, offline, seconds)."""

import datasets

#: The toy chat template with TRL's generation markers around each assistant turn's content and end-of-turn.
GENERATION_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}{{ '<|assistant|>' }}{% generation %}"
    "{{ message['content'] + '<|end|>' }}{% endgeneration %}"
    "{% else %}{{ '<|' + message['role'] + '|>' + message['content'] + '<|end|>' }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
)


def suite(n: int = 24):
    from sftmix.data import load_examples

    datasets.disable_progress_bars()
    return load_examples("builtin", split="train", n_train=n, n_test=0, seed=0)


def messages_dataset(n: int = 24) -> datasets.Dataset:
    """TRL's conversational language-modelling form: messages (user + assistant), with ids and a task column."""
    ex = suite(n)
    return datasets.Dataset.from_dict({
        "messages": [m + [{"role": "assistant", "content": r}] for m, r in zip(ex["messages"], ex["response"])],
        "example_id": ex["example_id"], "task": ex["task"]})


def prompt_completion_dataset(n: int = 24) -> datasets.Dataset:
    """TRL's conversational prompt-completion form."""
    ex = suite(n)
    return datasets.Dataset.from_dict({
        "prompt": ex["messages"], "completion": [[{"role": "assistant", "content": r}] for r in ex["response"]],
        "example_id": ex["example_id"], "task": ex["task"]})


def tokenizer(generation_markers: bool = False):
    from sftmix.toy import build_toy_tokenizer

    tok = build_toy_tokenizer()
    if generation_markers:
        tok.chat_template = GENERATION_TEMPLATE
    return tok


def model(tok, seed: int = 0):
    from sftmix.toy import build_tiny_model

    return build_tiny_model("llama", tokenizer=tok, hidden_size=16, num_heads=2, seed=seed)


def trl_args(out_dir, **kw) -> dict:
    """SFTConfig arguments for a CPU test: fp32, no gradient checkpointing (TRL's defaults are for GPUs)."""
    return {**dict(output_dir=str(out_dir), per_device_train_batch_size=8, learning_rate=3e-3, bf16=False,
                   gradient_checkpointing=False, use_cpu=True, report_to="none", disable_tqdm=True, seed=0,
                   logging_steps=1, save_strategy="no", max_length=128), **kw}
