"""pyserial URL handlers of the simulator (``sim://``); see ``protocol_sim.py``."""
