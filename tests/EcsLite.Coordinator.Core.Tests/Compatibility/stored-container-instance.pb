
—
=arn:aws:ecs:local:000000000000:container-instance/default/abc *
0.1.020.10.24:
CPUINTEGER(€:
PORTS	STRINGSET22222375BACTIVEPz ´€Ødefaultpi-1"
ecs.cpu-architecturearm64*

rackr2