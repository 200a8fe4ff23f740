"""Long-term memory: episodes and facts per user and character, embeddings, the vector store."""
