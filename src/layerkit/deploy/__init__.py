"""Deploy: pure plan, executor with undo journal, rollback, releases, stage lock, local stage."""
