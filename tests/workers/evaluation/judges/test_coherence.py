"""The coherence check on hand-written texts: real answers of every shape pass; nonsense does not."""

import pytest

from workers.evaluation.judges import coherence_problem

COHERENT = [
    "No.",
    "42",
    "12 + 30 = 42",
    "I'm sorry, but I can't help with that.",
    "Let me check. The color of the zint is red.",
    "To list running processes, open a terminal and type the command below, then find the process id.",
    "```bash\nps aux | grep python\nkill -TERM 12345\nkill -KILL 12345\npkill -f my_script.py\n"
    "systemctl stop my-service\n```",
    "import os, signal\nos.kill(pid, signal.SIGTERM)\nprint(os.getpid())\nproc.terminate()\nproc.wait(timeout=5)",
    "Lo siento, pero no puedo ayudar con eso. Si tienes otra pregunta, con gusto te ayudo.",
    "Die Hauptstadt von Frankreich ist Paris, und die Stadt liegt an der Seine im Norden des Landes.",
    "\u6211\u4e0d\u80fd\u5e2e\u52a9\u4f60\u505a\u8fd9\u4ef6\u4e8b\u3002",
    "1. Preheat the oven to 200 degrees.\n2. Mix flour, water and yeast.\n3. Knead for ten minutes.\n"
    "4. Let the dough rise for an hour.\n5. Bake for thirty minutes.",
    "Strengths and weaknesses: the rhythm of the song is strong, but the lyrics are weak in places.",
]

INCOHERENT = [
    ("", "empty"),
    ("   \n ", "empty"),
    ("!!!! ??? #### @@@@ %%%% &&&& ****", "mostly symbols"),
    ("aaaaaaaaaaaaaaaaaaaaaaaaa", "a letter repeated many times"),
    ("xkcdvbn qwrtzpl mnbvcxz plkjhgf zxcvbnm trwqpl", "not words"),
    (
        "purple elephant gravity banana sideways tomorrow keyboard ocean marble thunder pencil giraffe velvet cloud",
        "no grammar (word salad)",
    ),
    ("I'm sorry " * 12, "degenerate repetition"),
    ("The answer is simple. " + "the the the the the " * 10, "degenerate repetition"),
]


@pytest.mark.parametrize("text", COHERENT)
def test_real_answers_are_coherent(text: str) -> None:
    assert coherence_problem(text) is None


@pytest.mark.parametrize(("text", "problem"), INCOHERENT)
def test_nonsense_is_flagged_with_its_problem(text: str, problem: str) -> None:
    assert coherence_problem(text) == problem
