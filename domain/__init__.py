"""The pure domain of loanflow: loan vocabulary, policy and business rules.

Nothing here imports a framework, a database or Temporal, so the same code runs
in the API (validation at the edge), in workflow code (inside the sandbox) and
in plain unit tests. Every rule cites its ID in ``shared/RULEBOOK.md``.
"""
