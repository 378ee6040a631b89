"""The vector API moved from embeddings/ to documents/retrieval/ and kept its operation ids."""

from __future__ import annotations

from raggen.api import api


def test_the_vector_api_keeps_its_openapi_operation_ids():
    schema = api.get_openapi_schema()
    ids = {op["operationId"] for path in schema["paths"].values() for op in path.values()}
    assert {i for i in ids if i.startswith(("embeddings_", "documents_retrieval_"))} == {
        f"embeddings_api_{name}"
        for name in (
            "embed_texts",
            "search_vectors",
            "add_texts",
            "delete_vectors",
            "index_stats",
            "document_vector",
            "similar_documents",
        )
    }
