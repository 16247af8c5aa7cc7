"""Workers and collectives (who this worker is, `horovodrun` commands, CPU threads, allgather
and allreduce): the layer heads, training, data and tools all build on; it imports none of them."""
