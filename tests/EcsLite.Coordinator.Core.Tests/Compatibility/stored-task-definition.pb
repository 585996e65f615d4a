
Å
Harn:aws:ecs:local:000000000000:task-definition/fargate-task-definition:3»
sample-fargate-app	httpd:2.4B	PPtcpHZshZ-cbŽ/bin/sh -c "echo '<html> <head> <title>Amazon ECS Sample App</title> <style>body {margin-top: 40px; background-color: #333;} </style> </head><body> <div style=color:white;text-align:center> <h1>Amazon ECS Sample App</h1> <h2>Congratulations!</h2> <p>Your application is now running on a container in Amazon ECS.</p> </div></body></html>' >  /usr/local/apache2/htdocs/index.html && httpd-foreground"ªs
awslogs-
awslogs-group/ecs/fargate-task-definition
awslogs-region	us-east-1
awslogs-stream-prefixecsfargate-task-definition*3arn:aws:iam::012345678910:role/ecsTaskExecutionRole2awsvpc8JACTIVER5
3com.amazonaws.ecs.capability.logging-driver.awslogsjLINUXrFARGATEz256‚512ª ´€Ø
teamweb