"""The model's last hidden states and output head, for any causal LM family.

SFTMix needs the input of the LM head (the final-normed last hidden state) and the exact
map the model applies from there to logits. We get the hidden states by calling the
(possibly DDP/PEFT-wrapped) model normally, with a forward hook on its decoder, and
asking it for the logits of one position only (``logits_to_keep=1``): one transformer
pass, through the wrapper, so distributed gradient hooks fire as usual. The full
vocabulary projection then runs in token chunks in :mod:`sftmix.loss.ce`.

Families differ in what happens between hidden states and logits (Gemma-2 soft-caps,
Cohere scales, Granite divides). :func:`output_head` reads the known knobs from the
config and :func:`verify_output_head` compares against the model's own logits once (the
trainer calls it before training), so a family with unknown post-processing fails loudly
instead of training the wrong loss.

A tied head (Gemma, SmolLM2) shares its weight with the input embedding, whose ordinary
backward writes a dense (V, D) zero-filled gradient for the few rows a batch touches, added
to the head's own (V, D) gradient afterwards: at V = 262,144 a 671 MB float32 temporary per
step. :func:`forward_hidden` therefore runs a tied, trainable, unsharded embedding with
sparse gradients: autograd sums the head's dense gradient and the embedding's sparse rows
in its input buffer before the parameter's gradient is written, so ``.grad`` stays dense
and has the same values (:func:`sparse_tied_embedding`).
"""

from __future__ import annotations

import contextlib

import torch

from ..distributed import fsdp_unshard
from .ce import OutputHead


def unwrap_causal_lm(model: torch.nn.Module) -> torch.nn.Module:
    """The Hugging Face ``*ForCausalLM`` inside DDP/FSDP/compile/PEFT wrappers."""
    while True:
        if hasattr(model, "module") and isinstance(model.module, torch.nn.Module):
            model = model.module  # DDP / DeepSpeed engine
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod  # torch.compile
        elif hasattr(model, "get_base_model"):
            model = model.get_base_model()  # PEFT
        else:
            return model


def output_head(model: torch.nn.Module) -> OutputHead:
    """Describe the model's map from last hidden states to logits."""
    lm = unwrap_causal_lm(model)
    linear = lm.get_output_embeddings()
    if linear is None:
        raise ValueError(f"{type(lm).__name__} has no output embeddings (lm_head); it is not a causal LM")
    cfg = lm.config
    get = getattr(cfg, "get_text_config", lambda: cfg)
    text_cfg = get()
    scale = float(getattr(text_cfg, "logit_scale", None) or 1.0)  # Cohere multiplies
    if getattr(text_cfg, "logits_scaling", None):  # Granite divides
        scale /= float(text_cfg.logits_scaling)
    softcap = getattr(text_cfg, "final_logit_softcapping", None)
    return OutputHead(weight=linear.weight, bias=getattr(linear, "bias", None),
                      softcap=float(softcap) if softcap else None, scale=scale)


def head_context(model: torch.nn.Module, accelerator=None):
    """Context in which the output head's full parameters are available.

    Under DeepSpeed ZeRO-3 the head's weight is partitioned outside the model's forward,
    so it is gathered for the chunked loss; under FSDP2 a head left sharded after forward is
    unsharded (:func:`_unshard_resharded_head`). Elsewhere (single process, DDP) nothing is needed.
    """
    state = getattr(accelerator, "state", None)
    plugin = getattr(state, "deepspeed_plugin", None)
    if plugin is not None and getattr(plugin, "zero_stage", 0) == 3:
        import deepspeed

        params = [p for p in unwrap_causal_lm(model).get_output_embeddings().parameters()]
        return deepspeed.zero.GatheredParameters(params, modifier_rank=None)
    if getattr(state, "fsdp_plugin", None) is not None:
        _unshard_resharded_head(model)
    return contextlib.nullcontext()


def _unshard_resharded_head(model: torch.nn.Module) -> None:
    """Unshard the FSDP2 parameter group that holds the output head, if the head is sharded now.

    FSDP2 swaps a group's parameters between sharded ``DTensor`` objects and full tensors. After the
    model's forward the head is full when its group keeps parameters unsharded after forward
    (the root by default; accelerate's own unit for the final norm and head); a group that
    reshards after forward (``fully_shard(..., reshard_after_forward=True)`` on the root) leaves
    it a ``DTensor``, which the chunked head pass cannot multiply with. This all-gathers the
    group, as a forward of it would. The head's gradients accumulate on the full parameters and
    FSDP reduce-scatters them in the group's post-backward (at the latest in its end-of-backward
    callback), which also reshards it.
    """
    lm = unwrap_causal_lm(model)
    head = lm.get_output_embeddings()
    if head is None or type(head.weight).__name__ != "DTensor":
        return  # the usual case: nothing imported, nothing checked beyond a type name
    if not fsdp_unshard((head, lm)):
        raise RuntimeError(f"{type(lm).__name__}'s output head is a DTensor outside an FSDP2 module (tensor "
                           "parallel?); sftmix's chunked head pass cannot use it")


@contextlib.contextmanager
def capture_last_hidden(model: torch.nn.Module):
    """Record the decoder's ``last_hidden_state`` (the LM head's input) during a forward.

    Yields a dict whose ``"hidden"`` entry is set by the forward pass.
    """
    lm = unwrap_causal_lm(model)
    decoder = lm.base_model if lm.base_model is not lm else lm.get_decoder()
    store: dict[str, torch.Tensor] = {}

    def hook(module, args, output):
        store["hidden"] = output[0] if isinstance(output, tuple) else output.last_hidden_state

    handle = decoder.register_forward_hook(hook)
    try:
        yield store
    finally:
        handle.remove()


def _tied_trainable_embedding(model: torch.nn.Module) -> torch.nn.Embedding | None:
    """The input embedding when it is a plain trainable Parameter shared with the output head, else None."""
    lm = unwrap_causal_lm(model)
    if any(type(m).__name__.startswith(("FSDP", "FullyShardedDataParallel")) for m in (model, lm)):
        return None  # FSDP owns the parameters and their gradients' layout
    emb, out = lm.get_input_embeddings(), lm.get_output_embeddings()
    if not isinstance(emb, torch.nn.Embedding) or out is None or emb.weight is not getattr(out, "weight", None):
        return None
    w = emb.weight
    # Only a plain Parameter: sharded (FSDP DTensor, DeepSpeed ZeRO) or frozen weights keep the dense path.
    if type(w) is not torch.nn.Parameter or not w.requires_grad or hasattr(w, "ds_id") or w.is_sparse:
        return None
    if emb.sparse or emb.max_norm is not None or emb.scale_grad_by_freq:
        return None
    return emb


@contextlib.contextmanager
def sparse_tied_embedding(model: torch.nn.Module):
    """Within the context, a tied trainable input embedding records a sparse gradient.

    Only while gradients are recorded; a no-op for untied, frozen or sharded embeddings. The
    gradient that reaches ``weight.grad`` is dense whenever the output head also contributes
    (the head's dense gradient and the sparse rows are summed first); a loss that never uses
    the head would leave a sparse ``.grad``, which AdamW refuses loudly.
    """
    emb = _tied_trainable_embedding(model) if torch.is_grad_enabled() else None
    if emb is None:
        yield
        return
    emb.sparse = True
    try:
        yield
    finally:
        emb.sparse = False


def forward_hidden(model: torch.nn.Module, input_ids: torch.Tensor,
                   attention_mask: torch.Tensor | None = None, *, sparse_embedding_grad: bool = True) -> torch.Tensor:
    """Run the model once and return the last hidden states ``(B, T, D)``.

    The model computes logits for one position only, so no full-vocabulary tensor is
    made here. ``sparse_embedding_grad``: record a tied embedding's gradient sparsely
    (:func:`sparse_tied_embedding`; the caller must then use the output head in the loss).
    """
    sparse = sparse_tied_embedding(model) if sparse_embedding_grad else contextlib.nullcontext()
    with capture_last_hidden(model) as store, sparse:
        model(input_ids=input_ids, attention_mask=attention_mask, logits_to_keep=1, use_cache=False)
    if "hidden" not in store:
        raise RuntimeError("the model's decoder did not run; cannot read its last hidden states")
    return store["hidden"]


@torch.no_grad()
def verify_output_head(model: torch.nn.Module, input_ids: torch.Tensor, *, atol: float = 1e-3) -> None:
    """Check that ``output_head(model)`` reproduces the model's own logits.

    Raises ``ValueError`` naming the model class when it does not, e.g. for a family
    that post-processes logits in a way sftmix does not know about.
    """
    was_training = model.training
    model.eval()
    try:
        with capture_last_hidden(model) as store:
            own = model(input_ids=input_ids, use_cache=False).logits.float()
        ours = output_head(model).logits(store["hidden"])
    finally:
        model.train(was_training)
    err = (own - ours).abs().max().item()
    if err > atol * max(1.0, own.abs().max().item()):
        raise ValueError(
            f"{type(unwrap_causal_lm(model)).__name__}: logits computed from the last hidden state differ from "
            f"the model's own by {err:.3g}. The family applies post-processing that sftmix.loss.head.output_head "
            "does not know about; add it there.")
