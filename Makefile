# Convenience targets; the scripts do the work (and install what is missing).
.PHONY: demo test bench stop
demo:
	./scripts/demo.sh
test:
	./scripts/test.sh
bench:
	./bench/run.sh
stop:
	./scripts/stop.sh
