"""Batched greedy generation: the same answers as one prompt at a time, over two turns."""

import pytest

from sftmix.analysis.generate import generate_chat_turns, generate_texts
from sftmix.data.tokenize import render_conversation
from sftmix.toy.base import load_base_model

QUESTIONS = [["What is 2 + 3?", "And times 4?"], ["Name a colour.", "Another one, please, but a warm one."],
             ["Spell cat backwards.", "Now dog."], ["Say hi.", "Say bye."],
             ["Capital of France?", "And of Italy?"], ["Is 7 prime?", "Is 9?"]]


@pytest.fixture(scope="module")
def base():
    return load_base_model().eval()


def test_batched_equals_one_at_a_time_both_turns(base, tokenizer):
    one = generate_chat_turns(base, tokenizer, QUESTIONS, batch_size=1, max_new_tokens=12, progress=False)
    batched = generate_chat_turns(base, tokenizer, QUESTIONS, batch_size=4, max_new_tokens=12, progress=False)
    assert len(one) == len(batched) == 2
    for turn_one, turn_batched in zip(one, batched):
        assert turn_batched.texts == turn_one.texts
        assert turn_batched.n_tokens == turn_one.n_tokens and turn_batched.cut == turn_one.cut
    assert len(set(one[0].texts)) > 1   # the prompts get different answers (not a degenerate model)


def test_second_turn_follows_the_models_own_first_answer(base, tokenizer):
    turns = generate_chat_turns(base, tokenizer, QUESTIONS[:2], batch_size=2, max_new_tokens=12, progress=False)
    for q, (first, second) in enumerate(QUESTIONS[:2]):
        conversation = [{"role": "user", "content": first}, {"role": "assistant", "content": turns[0].texts[q]},
                        {"role": "user", "content": second}]
        alone = generate_texts(base, tokenizer, [render_conversation(tokenizer, conversation,
                                                                     add_generation_prompt=True)],
                               batch_size=1, max_new_tokens=12, progress=False)
        assert turns[1].texts[q] == alone.texts[0]
        assert turns[0].texts[q]   # a first answer to follow


def test_cut_and_token_counts(base, tokenizer):
    gens = generate_texts(base, tokenizer, [render_conversation(tokenizer, [{"role": "user", "content": "Say hi."}],
                                                                add_generation_prompt=True)] * 2,
                          batch_size=2, max_new_tokens=1, progress=False)
    assert gens.n_tokens == [1, 1]
    assert all(gens.cut) or gens.texts == ["", ""]   # one token: cut unless it was the end-of-turn token
    # questions with fewer turns drop out of the later turns
    turns = generate_chat_turns(base, tokenizer, [["Say hi."], ["Say hi.", "Again."]], max_new_tokens=3,
                                progress=False)
    assert turns[1].texts[0] == "" and turns[1].n_tokens[0] == 0 and turns[1].n_tokens[1] > 0
    with pytest.raises(ValueError):
        generate_texts(base, tokenizer, ["x"], max_new_tokens=0)


def test_generation_stops_at_the_generation_configs_extra_stop_token(tokenizer):
    model = load_base_model().eval()   # its own copy: the generation config is changed below
    prompt = render_conversation(tokenizer, [{"role": "user", "content": "Name a colour."}], add_generation_prompt=True)
    free = generate_texts(model, tokenizer, [prompt], max_new_tokens=6, progress=False)
    first = tokenizer(free.texts[0], add_special_tokens=False)["input_ids"][0]
    model.generation_config.eos_token_id = [tokenizer.eos_token_id, first]   # e.g. a template's end-of-turn token
    stopped = generate_texts(model, tokenizer, [prompt], max_new_tokens=6, progress=False)
    assert free.n_tokens[0] > 1 and stopped.n_tokens == [1] and stopped.cut == [False]
