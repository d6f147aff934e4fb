"""Reasoning over a reconstructed scene: renders and structures that language models read.

========================  ====================================================================
module                    what it does
========================  ====================================================================
``bev``                   top-down bird's-eye-view render (ROSS3D), z-buffer, object markers
``scene_graph``           objects with gravity-aligned oriented boxes, visibility, floor area
``graph_cache``           the scene graph cached in the Scene folder, keyed by what it depends on
``qa``                    spatial QA engine (VSI-Bench / SPAR-Bench families) over the scene graph
``qa_parser``             plain-English question templates -> structured queries
``questions``             question generator with ground-truth answers from synthetic scenes
``lmm``                   LMM backends: OpenAI-compatible endpoint, transformers VLM, G2VLM
``g2vlm_chat``            G2VLM's prompt templates and token ids, a character tokenizer
``g2vlm_lmm``             G2VLM's chat path (geometry + semantic branches) as an LMM backend
``grounding``             QA scene grounding: highlight an instance, ask yes/no, keep the yes
========================  ====================================================================

Names are imported lazily from their submodules.
"""

from sem3r._lazy import lazy_exports

_SUBMODULE = {
    "BEVConfig": "bev",
    "BEVImage": "bev",
    "render_bev": "bev",
    "resolve_up": "bev",
    "save_bev": "bev",
    "SceneGraph": "scene_graph",
    "SceneGraphConfig": "scene_graph",
    "SceneObject": "scene_graph",
    "build_scene_graph": "scene_graph",
    "floor_area": "scene_graph",
    "ground_basis": "scene_graph",
    "oriented_box": "scene_graph",
    "load_or_build_scene_graph": "graph_cache",
    "scene_fingerprint": "graph_cache",
    "FAMILIES": "qa",
    "Answer": "qa",
    "QAConfig": "qa",
    "QAEngine": "qa",
    "Query": "qa",
    "DIMENSIONS": "qa",
    "ask": "qa",
    "parse_question": "qa_parser",
    "GeneratedQuestion": "questions",
    "QuestionConfig": "questions",
    "generate_questions": "questions",
    "score_answer": "questions",
    "score_by_family": "questions",
    "LMM": "lmm",
    "OpenAIEndpointConfig": "lmm",
    "OpenAIEndpointLMM": "lmm",
    "TransformersLMM": "lmm",
    "TransformersLMMConfig": "lmm",
    "make_lmm": "lmm",
    "check_lmm_spec": "lmm",
    "parse_yes_no": "lmm",
    "G2VLMLMM": "g2vlm_lmm",
    "G2VLMLMMConfig": "g2vlm_lmm",
    "GroundingConfig": "grounding",
    "GroundingResult": "grounding",
    "ground_instances": "grounding",
    "highlight_instance": "grounding",
}

__getattr__, __dir__, __all__ = lazy_exports("sem3r.reasoning", _SUBMODULE)
