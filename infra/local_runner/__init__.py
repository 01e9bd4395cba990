"""Docker-free local runner: serves template.yaml's HttpApi routes and drives its SQS consumers in-process."""
