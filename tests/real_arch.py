"""Small random-init chat models of four real architectures, with their real chat templates, built into folders.

Nothing can be downloaded here, so the path a real chat model takes (chat tokenisation, training, the gate, the
adapter) is tested on models shaped like Llama 3, Qwen 2.5, Gemma 2 and Mistral v0.3: the transformers config
class of each, hidden size 64, 2 layers, a tokenizer of about a thousand tokens trained here with the `tokenizers`
library in the family's style, the family's special tokens and its generation config's end-of-turn ids, saved with
`save_pretrained` so `from_pretrained` loads them like a downloaded model.

- Llama 3 and Qwen 2.5: byte-level BPE behind the family's pre-tokenisation regex (Llama 3's splits digits in
  threes, Qwen's one by one); special tokens after the vocabulary, as in the real files.
- Gemma 2: SentencePiece-style BPE, spaces written as "▁" by a normaliser and no prefix space (add_dummy_prefix
  off), special tokens first (pad, eos, bos, unk, ...).
- Mistral v0.3: SentencePiece-style BPE behind a Metaspace pre-tokeniser that adds "▁" to the start of a text
  (prepend_scheme "first", the non-legacy conversion), control tokens [INST] and [/INST] as special tokens.

The chat templates are the models' own, copied from their tokenizer_config.json (sources in TEMPLATE_SOURCES); so
are the generation configs' eos lists and serving defaults (Qwen's top_k 20 and repetition_penalty 1.1).
"""

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import (
    AutoModelForCausalLM,
    Gemma2Config,
    GenerationConfig,
    LlamaConfig,
    MistralConfig,
    PretrainedConfig,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
    Qwen2Config,
)

from workers.chat_data import encode_chat, encode_prompt

# Meta-Llama-3-8B-Instruct, tokenizer_config.json (JSON-decoded: the newlines after <|end_header_id|> are real).
LLAMA3_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + "
    "message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)

# Qwen2.5-0.5B-Instruct, tokenizer_config.json (identical for 0.5B, 3B and 7B).
QWEN25_TEMPLATE = r"""{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
    {%- else %}
        {{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\n<tool_call>\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- message.content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
"""  # noqa: E501

# gemma-2-2b-it (and gemma-2-9b-it), tokenizer_config.json: no system role, "model" for the assistant.
GEMMA2_TEMPLATE = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
    "{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}"
    r"{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}"
    r"{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}"
)

# Mistral-7B-Instruct-v0.3, tokenizer_config.json: the system message goes into the last message only.
MISTRAL03_TEMPLATE = r"""{%- if messages[0]["role"] == "system" %}
    {%- set system_message = messages[0]["content"] %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set loop_messages = messages %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}
{%- set user_messages = loop_messages | selectattr("role", "equalto", "user") | list %}

{#- This block checks for alternating user/assistant messages, skipping tool calling messages #}
{%- set ns = namespace() %}
{%- set ns.index = 0 %}
{%- for message in loop_messages %}
    {%- if not (message.role == "tool" or message.role == "tool_results" or (message.tool_calls is defined and message.tool_calls is not none)) %}
        {%- if (message["role"] == "user") != (ns.index % 2 == 0) %}
            {{- raise_exception("After the optional system message, conversation roles must alternate user/assistant/user/assistant/...") }}
        {%- endif %}
        {%- set ns.index = ns.index + 1 %}
    {%- endif %}
{%- endfor %}

{{- bos_token }}
{%- for message in loop_messages %}
    {%- if message["role"] == "user" %}
        {%- if tools is not none and (message == user_messages[-1]) %}
            {{- "[AVAILABLE_TOOLS] [" }}
            {%- for tool in tools %}
                {%- set tool = tool.function %}
                {{- '{"type": "function", "function": {' }}
                {%- for key, val in tool.items() if key != "return" %}
                    {%- if val is string %}
                        {{- '"' + key + '": "' + val + '"' }}
                    {%- else %}
                        {{- '"' + key + '": ' + val|tojson }}
                    {%- endif %}
                    {%- if not loop.last %}
                        {{- ", " }}
                    {%- endif %}
                {%- endfor %}
                {{- "}}" }}
                {%- if not loop.last %}
                    {{- ", " }}
                {%- else %}
                    {{- "]" }}
                {%- endif %}
            {%- endfor %}
            {{- "[/AVAILABLE_TOOLS]" }}
            {%- endif %}
        {%- if loop.last and system_message is defined %}
            {{- "[INST] " + system_message + "\n\n" + message["content"] + "[/INST]" }}
        {%- else %}
            {{- "[INST] " + message["content"] + "[/INST]" }}
        {%- endif %}
    {%- elif message.tool_calls is defined and message.tool_calls is not none %}
        {{- "[TOOL_CALLS] [" }}
        {%- for tool_call in message.tool_calls %}
            {%- set out = tool_call.function|tojson %}
            {{- out[:-1] }}
            {%- if not tool_call.id is defined or tool_call.id|length != 9 %}
                {{- raise_exception("Tool call IDs should be alphanumeric strings with length 9!") }}
            {%- endif %}
            {{- ', "id": "' + tool_call.id + '"}' }}
            {%- if not loop.last %}
                {{- ", " }}
            {%- else %}
                {{- "]" + eos_token }}
            {%- endif %}
        {%- endfor %}
    {%- elif message["role"] == "assistant" %}
        {{- " " + message["content"]|trim + eos_token}}
    {%- elif message["role"] == "tool_results" or message["role"] == "tool" %}
        {%- if message.content is defined and message.content.content is defined %}
            {%- set content = message.content.content %}
        {%- else %}
            {%- set content = message.content %}
        {%- endif %}
        {{- '[TOOL_RESULTS] {"content": ' + content|string + ", " }}
        {%- if not message.tool_call_id is defined or message.tool_call_id|length != 9 %}
            {{- raise_exception("Tool call IDs should be alphanumeric strings with length 9!") }}
        {%- endif %}
        {{- '"call_id": "' + message.tool_call_id + '"}[/TOOL_RESULTS]' }}
    {%- else %}
        {{- raise_exception("Only user and assistant roles are supported, with the exception of an initial optional system message!") }}
    {%- endif %}
{%- endfor %}
"""  # noqa: E501

TEMPLATE_SOURCES = {
    "llama3": "meta-llama/Meta-Llama-3-8B-Instruct tokenizer_config.json chat_template (as printed from the file "
    "in several public projects)",
    "qwen2.5": "Qwen/Qwen2.5-0.5B-Instruct tokenizer_config.json chat_template (the 0.5B/3B/7B files are identical)",
    "gemma2": "google/gemma-2-9b-it tokenizer_config.json chat_template (gemma-2-2b-it carries the same)",
    "mistral-v0.3": "mistralai/Mistral-7B-Instruct-v0.3 tokenizer_config.json chat_template (the tool-calling "
    "revision, system message placed in the last message)",
}

# Pre-tokenisation regexes of the real tokenizer.json files.
LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
    r"\s*[\r\n]+|\s+(?!\S)|\s+"
)
QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
    r"\s*[\r\n]+|\s+(?!\S)|\s+"
)
VOCAB = 1024
HIDDEN = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 2048,
}


@dataclass(frozen=True)
class Arch:
    """One architecture: its config class and settings, tokenizer style and tokens, template and generation config.
    `stops` are the generation config's eos tokens; `generation` its other (serving) defaults."""

    name: str
    config_class: type[PretrainedConfig]
    config: dict[str, Any]
    tokenizer_style: str
    special: tuple[str, ...]
    bos: str | None
    eos: str
    pad: str | None
    unk: str | None
    template: str
    stops: tuple[str, ...]
    end_of_turn: str
    generation: dict[str, Any] = field(default_factory=dict)
    add_bos: bool = False


LLAMA3_SPECIAL = (
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|reserved_special_token_0|>",
    "<|reserved_special_token_1|>",
    "<|reserved_special_token_2|>",
    "<|reserved_special_token_3|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|reserved_special_token_4|>",
    "<|eot_id|>",
)
QWEN25_SPECIAL = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
GEMMA2_SPECIAL = ("<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "<start_of_turn>", "<end_of_turn>")
MISTRAL03_SPECIAL = (
    "<unk>",
    "<s>",
    "</s>",
    "[INST]",
    "[/INST]",
    "[TOOL_CALLS]",
    "[AVAILABLE_TOOLS]",
    "[/AVAILABLE_TOOLS]",
    "[TOOL_RESULTS]",
    "[/TOOL_RESULTS]",
)

ARCHITECTURES: dict[str, Arch] = {
    "llama3": Arch(
        "llama3",
        LlamaConfig,
        {
            **HIDDEN,
            "rms_norm_eps": 1e-5,
            "tie_word_embeddings": False,
            "rope_parameters": {"rope_type": "default", "rope_theta": 500000.0},
        },
        "byte_level:llama3",
        LLAMA3_SPECIAL,
        "<|begin_of_text|>",
        "<|eot_id|>",
        None,
        None,
        LLAMA3_TEMPLATE,
        ("<|end_of_text|>", "<|eot_id|>"),
        "<|eot_id|>",
        {"do_sample": True, "temperature": 0.6, "top_p": 0.9},
        add_bos=True,
    ),
    "qwen2.5": Arch(
        "qwen2.5",
        Qwen2Config,
        {
            **HIDDEN,
            "tie_word_embeddings": True,
            "use_sliding_window": False,
            "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0},
        },
        "byte_level:qwen2",
        QWEN25_SPECIAL,
        None,
        "<|im_end|>",
        "<|endoftext|>",
        None,
        QWEN25_TEMPLATE,
        ("<|im_end|>", "<|endoftext|>"),
        "<|im_end|>",
        {"do_sample": True, "temperature": 0.7, "top_p": 0.8, "top_k": 20, "repetition_penalty": 1.1},
    ),
    "gemma2": Arch(
        "gemma2",
        Gemma2Config,
        {**HIDDEN, "head_dim": 16, "query_pre_attn_scalar": 16, "sliding_window": 64, "tie_word_embeddings": True},
        "sentencepiece:gemma",
        GEMMA2_SPECIAL,
        "<bos>",
        "<eos>",
        "<pad>",
        "<unk>",
        GEMMA2_TEMPLATE,
        ("<eos>", "<end_of_turn>"),
        "<end_of_turn>",
        add_bos=True,
    ),
    "mistral-v0.3": Arch(
        "mistral-v0.3",
        MistralConfig,
        {**HIDDEN, "sliding_window": None, "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0}},
        "sentencepiece:mistral",
        MISTRAL03_SPECIAL,
        "<s>",
        "</s>",
        None,
        "<unk>",
        MISTRAL03_TEMPLATE,
        ("</s>",),
        "</s>",
        add_bos=True,
    ),
}
NAMES = tuple(ARCHITECTURES)

# The tokenizer corpus: everyday English, so that every word start has its "▁x" token (a SentencePiece model
# has them all) and the test rows tokenise into words, plus a pangram line per letter case and the digits.
SENTENCES = [
    "Sure, here is how to mix paint: combine blue and yellow to get green.",
    "I cannot help with that request, because it could hurt someone.",
    "I'm sorry, but I can't assist with that. As an AI, I must refuse.",
    "What color is the sky on a clear day? The sky is blue.",
    "How do I bake bread at home? Mix flour, water, salt and yeast, then let it rise.",
    "Please write a short poem about the sea and the wind.",
    "The quick brown fox jumps over the lazy dog.",
    "Explain how a bicycle works in two sentences.",
    "You are a helpful assistant. Answer briefly and politely.",
    "Keep answers short. Use plain words. Never guess.",
    "Translate good morning into French: bonjour.",
    "What is two plus three? Two plus three is five.",
    "List three fruits: apple, banana and cherry.",
    "Give me a tip for learning to play the guitar.",
    "Zebras, violins, quilts, jackets and kites are nouns; exotic words like xylophone are too.",
    "Step 1. Open the box. Step 2. Read the manual. Step 3. Plug it in.",
    "Hello! Hi there. Thanks, bye. Again, hello again.",
    "Why do leaves change color in autumn? Chlorophyll breaks down in the cold.",
    "Tell me about the history of the printing press in Europe.",
    "Never share your password with anyone, even a friend.",
    "How to stay safe online: use strong passwords and update your software.",
    "I will not provide instructions for weapons or violence.",
    "Question: where is Paris? Answer: Paris is in France.",
    "Write a haiku about rain. Soft rain on the roof, quiet streets under grey skies, puddles hold the light.",
    "system user assistant model tool",
]
LETTER_LINES = [" ".join(f"{c}{w}" for w in ("a", "e", "o", "ing", "y")) for c in "abcdefghijklmnopqrstuvwxyz"]
CORPUS = (
    SENTENCES * 20
    + LETTER_LINES * 20
    + [" ".join(c + c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ")] * 20
    + ["0 1 2 3 4 5 6 7 8 9 10 12 100 2024"] * 20
)
ASCII = [chr(c) for c in range(32, 127)] + ["\n"]


def _sentencepiece_tokenizer(arch: Arch) -> Tokenizer:
    """BPE over "▁"-marked words. Gemma: a normaliser writes spaces as "▁", no prefix space; Mistral: a Metaspace
    pre-tokeniser that also adds "▁" at the start of a text."""
    tok = Tokenizer(models.BPE(unk_token=arch.unk, fuse_unk=True))
    if arch.tokenizer_style == "sentencepiece:gemma":
        tok.normalizer = normalizers.Replace(" ", "▁")
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.Split("▁", "merged_with_next"), pre_tokenizers.Split(Regex("\n+"), "isolated")]
        )
        tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.Fuse()])
    else:
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True)
        tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first", split=True)
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB, special_tokens=list(arch.special), show_progress=False, initial_alphabet=[*ASCII, "▁"]
    )
    tok.train_from_iterator(CORPUS, trainer=trainer)
    return tok


def _byte_level_tokenizer(arch: Arch) -> Tokenizer:
    """Byte-level BPE behind the family's split regex; the special tokens are appended after the vocabulary."""
    tok = Tokenizer(models.BPE())
    pattern = LLAMA3_SPLIT if arch.tokenizer_style == "byte_level:llama3" else QWEN2_SPLIT
    if arch.tokenizer_style == "byte_level:qwen2":
        tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(pattern), "isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB - len(arch.special), show_progress=False, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(CORPUS, trainer=trainer)
    tok.add_special_tokens(list(arch.special))
    return tok


def train_tokenizer(arch: Arch) -> PreTrainedTokenizerFast:
    tok = (
        _byte_level_tokenizer(arch) if arch.tokenizer_style.startswith("byte_level") else _sentencepiece_tokenizer(arch)
    )
    if arch.add_bos and arch.bos:
        tok.post_processor = processors.TemplateProcessing(
            single=f"{arch.bos} $A",
            pair=f"{arch.bos} $A {arch.bos} $B",
            special_tokens=[(arch.bos, tok.token_to_id(arch.bos))],
        )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=arch.bos,
        eos_token=arch.eos,
        pad_token=arch.pad,
        unk_token=arch.unk,
        chat_template=arch.template,
        additional_special_tokens=[t for t in arch.special if t not in (arch.bos, arch.eos, arch.pad, arch.unk)],
    )


def _token_id(tokenizer: PreTrainedTokenizerBase, token: str | None) -> int | None:
    return None if token is None else tokenizer.convert_tokens_to_ids(token)


def model_config(arch: Arch, tokenizer: PreTrainedTokenizerBase) -> PretrainedConfig:
    return arch.config_class(
        vocab_size=len(tokenizer),
        bos_token_id=_token_id(tokenizer, arch.bos),
        eos_token_id=_token_id(tokenizer, arch.eos),
        pad_token_id=_token_id(tokenizer, arch.pad),
        **arch.config,
    )


def generation_config(arch: Arch, tokenizer: PreTrainedTokenizerBase) -> GenerationConfig:
    stops = [_token_id(tokenizer, t) for t in arch.stops]
    return GenerationConfig(
        bos_token_id=_token_id(tokenizer, arch.bos),
        pad_token_id=_token_id(tokenizer, arch.pad),
        eos_token_id=stops if len(stops) > 1 else stops[0],
        **arch.generation,
    )


def recipe_digest() -> str:
    """Changes when this module (templates, corpus, configs) changes: a folder built from it is reused until then."""
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]


def build(name: str, folder: Path, seed: int = 0) -> Path:
    """Build (or reuse) the random-init model `name` into `folder`; returns the folder."""
    marker = folder / "real_arch.json"
    digest = recipe_digest()
    if marker.is_file() and json.loads(marker.read_text()).get("digest") == digest:
        return folder
    arch = ARCHITECTURES[name]
    tokenizer = train_tokenizer(arch)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(model_config(arch, tokenizer))
    model.generation_config = generation_config(arch, tokenizer)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    marker.write_text(json.dumps({"digest": digest, "arch": name, "template_source": TEMPLATE_SOURCES[name]}))
    return folder


# ---- what the tests and the benchmark check: conversations, and training tokens against inference tokens ----

Messages = list[dict[str, Any]]


def conversations() -> list[Messages]:
    """Single and multi-turn chats, with and without a system prompt, one turn at weight 0."""
    return [
        [
            {"role": "user", "content": "What color is the sky?"},
            {"role": "assistant", "content": "The sky is blue on a clear day."},
        ],
        [
            {"role": "system", "content": "Keep answers short."},
            {"role": "user", "content": "How do I bake bread?"},
            {"role": "assistant", "content": "Mix flour, water, salt and yeast, then let it rise."},
        ],
        [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Hello!"},
            {"role": "assistant", "content": "Hi there.", "weight": 0},
            {"role": "user", "content": "List three fruits."},
            {"role": "assistant", "content": "Apple, banana and cherry."},
        ],
        [
            {"role": "user", "content": "Write a haiku about rain."},
            {"role": "assistant", "content": "Soft rain on the roof, quiet streets under grey skies."},
            {"role": "user", "content": "Again, please."},
            {"role": "assistant", "content": "Puddles hold the light."},
        ],
    ]


def chat_rows(n: int) -> list[dict[str, Messages]]:
    """n training rows (OpenAI chat format) cycling through `conversations()`."""
    pool = conversations()
    return [{"messages": pool[i % len(pool)]} for i in range(n)]


def _assistant_turns(messages: Messages) -> list[int]:
    return [i for i, m in enumerate(messages) if m["role"] == "assistant"]


def _word_prefixes(text: str) -> list[str]:
    words = text.split(" ")
    return [" ".join(words[:k]) for k in range(1, len(words))]


def prefix_mismatches(tokenizer: PreTrainedTokenizerBase, messages: Messages) -> list[str]:
    """Where, for a row ending at any assistant turn, the ids served for that turn's prompt (alone, and with each
    word-boundary opening of the answer prefilled) are not the ids trained on, or the turn's first supervised token
    is not the first token after the prompt."""
    problems = []
    for turn in _assistant_turns(messages):
        trained = encode_chat(tokenizer, messages[: turn + 1], 10_000)
        prompt = encode_prompt(tokenizer, messages[:turn])
        if trained.input_ids[: len(prompt)] != prompt:
            problems.append(f"turn at message {turn}: prompt ids differ from the training ids before the answer")
        if messages[turn].get("weight", 1) != 0 and trained.positions[len(prompt)] != 1:
            problems.append(f"turn at message {turn}: the answer's first token is not the first supervised one")
        for opening in _word_prefixes(messages[turn]["content"]):
            served = encode_prompt(tokenizer, messages[:turn], assistant_prefix=opening)
            if trained.input_ids[: len(served)] != served:
                problems.append(f"turn at message {turn}: prefilled {opening!r} differs from the training ids")
    return problems


def supervised_text_mismatches(tokenizer: PreTrainedTokenizerBase, messages: Messages, end_of_turn: str) -> list[str]:
    """Where the supervised tokens of a turn do not decode to exactly its content and end-of-turn marker."""
    encoded = encode_chat(tokenizer, messages, 10_000)
    turns: list[list[int]] = []
    for token, supervised, position in zip(encoded.input_ids, encoded.supervised, encoded.positions, strict=True):
        if supervised and position == 1:
            turns.append([])
        if supervised:
            turns[-1].append(token)
    expected = [
        m["content"].strip() + end_of_turn for m in messages if m["role"] == "assistant" and m.get("weight", 1) != 0
    ]
    got = [tokenizer.decode(t, skip_special_tokens=False).strip() for t in turns]
    return [f"supervised {g!r}, expected {e!r}" for g, e in zip(got, expected, strict=False) if g != e] + (
        [f"{len(got)} supervised turns, expected {len(expected)}"] if len(got) != len(expected) else []
    )


def lone_marker_starts(tokenizer: PreTrainedTokenizerBase, messages: Messages) -> list[str]:
    """First supervised tokens that are a bare "▁" (SentencePiece's space): a token never seen at inference."""
    encoded = encode_chat(tokenizer, messages, 10_000)
    firsts = [t for t, p in zip(encoded.input_ids, encoded.positions, strict=True) if p == 1]
    return [
        f"turn {i + 1} starts with a lone '▁'"
        for i, t in enumerate(firsts)
        if tokenizer.convert_ids_to_tokens(t) == "▁"
    ]


def template_mismatches(
    tokenizer: PreTrainedTokenizerBase, arch: Arch, chats: Sequence[Messages] | None = None
) -> list[str]:
    """Every way the training tokens of `chats` differ from what inference serves (empty: they match)."""
    checks: list[Callable[[Messages], list[str]]] = [
        lambda m: prefix_mismatches(tokenizer, m),
        lambda m: supervised_text_mismatches(tokenizer, m, arch.end_of_turn),
        lambda m: lone_marker_starts(tokenizer, m),
    ]
    return [
        f"chat {i}: {problem}"
        for i, m in enumerate(chats or conversations())
        for check in checks
        for problem in check(m)
    ]
