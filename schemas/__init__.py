"""Wire and domain types shared by the control plane and the workers.

Imports nothing of ours and never torch or fastapi, so both processes can load it cheaply.
"""
