"""One row of a chat fine-tuning file (OpenAI's chat JSONL format)."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Role = Literal["system", "user", "assistant"]


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role
    content: str = Field(max_length=200_000)
    weight: Literal[0, 1] | None = None
    name: str | None = Field(default=None, max_length=64)

    @model_validator(mode="after")
    def _weight_only_on_assistant(self) -> "ChatMessage":
        if self.weight is not None and self.role != "assistant":
            raise ValueError("'weight' is only allowed on assistant messages")
        return self


class ChatRow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    messages: list[ChatMessage] = Field(min_length=1, max_length=512)

    @model_validator(mode="after")
    def _has_trainable_assistant_turn(self) -> "ChatRow":
        if not any(m.role == "assistant" and m.weight != 0 for m in self.messages):
            raise ValueError("needs at least one assistant message with weight 1 (nothing to train on)")
        if self.messages[-1].role != "assistant":
            raise ValueError("the last message must be from the assistant")
        return self
