
È
2arn:aws:ecs:local:000000000000:service/default/webweb.arn:aws:ecs:local:000000000000:cluster/default2ACTIVE8@RFARGATErHarn:aws:ecs:local:000000000000:task-definition/fargate-task-definition:3z
È2Šw
ecs-svc/123PRIMARYHarn:aws:ecs:local:000000000000:task-definition/fargate-task-definition:3 0B ´€Øz	COMPLETEDš7
e1 ´€Ø)(service web) has reached a steady state.¢ ´€ØÂ)
spreadattribute:ecs.availability-zoneÚREPLICAdefaultHarn:aws:ecs:local:000000000000:task-definition/fargate-task-definition:3 