"""The hardware model: chip profiles, the inventory and what discovery reports."""
