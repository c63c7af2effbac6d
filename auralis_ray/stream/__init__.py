"""Sans-I/O streaming core: no Ray, no sockets, no clocks. Time is always an argument."""
