"""OpenStack-style managers as pykka actors."""
