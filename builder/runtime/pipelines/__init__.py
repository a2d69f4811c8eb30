"""The runtime pipelines, one module per task, by the name a bundle's manifest gives (runtime.pipeline)."""

from __future__ import annotations

from builder.runtime.pipelines.base import Pipeline
from builder.runtime.pipelines.feature_extraction import FeatureExtraction
from builder.runtime.pipelines.question_answering import QuestionAnswering
from builder.runtime.pipelines.text2text_generation import Summarization, Text2TextGeneration, Translation
from builder.runtime.pipelines.text_classification import TextClassification
from builder.runtime.pipelines.text_generation import TextGeneration
from builder.runtime.pipelines.token_classification import TokenClassification
from builder.runtime.pipelines.zero_shot_classification import ZeroShotClassification

PIPELINES: dict[str, type[Pipeline]] = {
    "feature-extraction": FeatureExtraction,
    "text-classification": TextClassification,
    "token-classification": TokenClassification,
    "question-answering": QuestionAnswering,
    "zero-shot-classification": ZeroShotClassification,
    "text-generation": TextGeneration,
    "text2text-generation": Text2TextGeneration,
    "summarization": Summarization,
    "translation": Translation,
}
