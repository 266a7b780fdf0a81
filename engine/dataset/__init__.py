"""The dataset doctor: check, prepare and caption training images without touching the originals."""

from engine.data.captions import training_caption
from engine.dataset.autocaption import AutocaptionResult, autocaption, load_captioner
from engine.dataset.captions import CaptionStore, Change, ChangeSet
from engine.dataset.checks import check_dataset
from engine.dataset.errors import CaptionError, CaptionerUnavailableError, DatasetError, TokenizerError, WorkersError
from engine.dataset.files import IMAGE_EXTENSIONS, caption_path, list_images
from engine.dataset.image_probe import ImageProbe
from engine.dataset.prepare import PrepareResult, prepare_dataset
from engine.dataset.prepared_origin import folder_beside, prepare_paths, prepared_from
from engine.dataset.profile_settings import check_concept, concept_settings, prepare_settings
from engine.dataset.report import DatasetReport, Finding, Summary
from engine.dataset.tokens import TextReader, load_readers, load_tokenizer
from engine.profile.identifier import guess_identifier

__all__ = [
    "IMAGE_EXTENSIONS",
    "AutocaptionResult",
    "CaptionError",
    "CaptionStore",
    "CaptionerUnavailableError",
    "Change",
    "ChangeSet",
    "DatasetError",
    "DatasetReport",
    "Finding",
    "ImageProbe",
    "PrepareResult",
    "Summary",
    "TextReader",
    "TokenizerError",
    "WorkersError",
    "autocaption",
    "caption_path",
    "check_concept",
    "check_dataset",
    "concept_settings",
    "folder_beside",
    "guess_identifier",
    "list_images",
    "load_captioner",
    "load_readers",
    "load_tokenizer",
    "prepare_dataset",
    "prepare_paths",
    "prepare_settings",
    "prepared_from",
    "training_caption",
]
