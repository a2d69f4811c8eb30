"""Question-answering cases for the golden outputs of transformers 4.57 (whose QA pipeline transformers 5
removed). Shared by make_qa_golden.py (which runs them there) and test_pipelines.py (which runs the bundle)."""

LONG = " ".join(
    [
        "George Washington was the first president of the United States.",
        "Apple Inc. is headquartered in Cupertino, California.",
        "Paris is the capital and largest city of France.",
        "The quick brown fox jumps over the lazy dog.",
    ]
    * 12
)
CASES = [
    {
        "question": "Who was the first president?",
        "context": "George Washington was the first president of the United States.",
    },
    {"question": "Where is Apple headquartered?", "context": LONG, "top_k": 3},
    {
        "question": "Where is Apple headquartered?",
        "context": LONG,
        "doc_stride": 32,
        "max_seq_len": 64,
        "top_k": 2,
    },
    {
        "question": "What is the capital of France?",
        "context": "Paris is the capital and largest city of France.",
        "top_k": 5,
        "max_answer_len": 3,
    },
    {
        "question": "Who won the world cup?",
        "context": "The quick brown fox jumps over the lazy dog.",
        "handle_impossible_answer": True,
    },
    {"question": "Who won the world cup?", "context": LONG, "handle_impossible_answer": True, "top_k": 3},
    {"question": "Qui est le président?", "context": "Café naïve résumé — 🙂 George Washington, président."},
    {"question": "Where?", "context": "   "},
    {"question": "", "context": "An empty question."},
    {
        "question": "Where is Apple?",
        "context": "Apple Inc. is headquartered in Cupertino.",
        "align_to_words": False,
        "top_k": 4,
    },
    {
        "question": ["Who was the first president?", "Where is Apple headquartered?"],
        "context": [
            "George Washington was the first president.",
            "Apple Inc. is headquartered in Cupertino.",
        ],
    },
    {"question": ["Who?", "Where?"], "context": "George Washington lived in Mount Vernon, Virginia."},
]
