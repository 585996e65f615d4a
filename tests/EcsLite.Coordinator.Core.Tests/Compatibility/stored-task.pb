
È
K
eni-1ElasticNetworkInterfaceDELETED" 
privateIPv4Address
172.17.0.2*.arn:aws:ecs:local:000000000000:cluster/default2	CONNECTEDB=arn:aws:ecs:local:000000000000:container-instance/default/abcJ}sample-fargate-app2c0ffee:STOPPED@‰J6OutOfMemoryError: Container killed due to memory usageR
0.0.0.0PP"tcpbUNKNOWNR256Z ´€ØbSTOPPEDzfamily:fargate-task-definition’STOPPEDšFARGATE¢512ª$
"
sample-fargate-app
MODEtestÒ ´€ØÚecs-svc/123âEssentialContainerExitedê ´€Øò"Essential container in task exited‚
ownermeŠLarn:aws:ecs:local:000000000000:task/default/0123456789abcdef0123456789abcdef’Harn:aws:ecs:local:000000000000:task-definition/fargate-task-definition:3˜Å
Harn:aws:ecs:local:000000000000:task-definition/fargate-task-definition:3»
sample-fargate-app	httpd:2.4B	PPtcpHZshZ-cbŽ/bin/sh -c "echo '<html> <head> <title>Amazon ECS Sample App</title> <style>body {margin-top: 40px; background-color: #333;} </style> </head><body> <div style=color:white;text-align:center> <h1>Amazon ECS Sample App</h1> <h2>Congratulations!</h2> <p>Your application is now running on a container in Amazon ECS.</p> </div></body></html>' >  /usr/local/apache2/htdocs/index.html && httpd-foreground"ªs
awslogs-
awslogs-group/ecs/fargate-task-definition
awslogs-region	us-east-1
awslogs-stream-prefixecsfargate-task-definition*3arn:aws:iam::012345678910:role/ecsTaskExecutionRole2awsvpc8JACTIVER5
3com.amazonaws.ecs.capability.logging-driver.awslogsjLINUXrFARGATEz256‚512ª ´€Ødefault"token-1