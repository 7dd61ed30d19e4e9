"""Market mathematics: pure tensor functions, no optimisers and no IO."""
