# inr2vec end to end: fit INRs -> train inr2vec -> encode -> classifier -> classify -> retrieve -> t-SNE.
#
#   make -f pipelines/inr2vec.mk                      # PSB (15 train / 5 test per class), tiny preset
#   make -f pipelines/inr2vec.mk DATA=shapes/ OUT=run/ EPOCHS=5 CLF_EPOCHS=20   # a quick check
#
# Every stage is one nrtool command writing one artifact, so make reruns only what is missing,
# and an interrupted fit-inr resumes where it stopped.
PRESET     ?= tiny
NRTOOL     ?= .venv/bin/nrtool
DATA       ?= ../shared/data/psb
OUT        ?= bench-out/inr2vec-$(PRESET)
EPOCHS     ?= 100
CLF_EPOCHS ?= 60
DEVICE     ?= auto

all: $(OUT)/classify.json $(OUT)/retrieve.json $(OUT)/tsne.png

$(OUT)/inrs.h5:
	mkdir -p $(OUT)
	$(NRTOOL) fit-inr $(DATA) --out $@ --preset $(PRESET) --device $(DEVICE) --quiet

$(OUT)/inr2vec.pt: $(OUT)/inrs.h5
	$(NRTOOL) train inr2vec $< --out $@ --preset $(PRESET) --epochs $(EPOCHS) --device $(DEVICE) --quiet

$(OUT)/emb.h5: $(OUT)/inrs.h5 $(OUT)/inr2vec.pt
	$(NRTOOL) encode $< --model $(OUT)/inr2vec.pt --out $@ --device $(DEVICE) --quiet

$(OUT)/clf.pt: $(OUT)/emb.h5
	$(NRTOOL) train classifier $< --out $@ --preset $(PRESET) --epochs $(CLF_EPOCHS) --device $(DEVICE) --quiet

$(OUT)/classify.json: $(OUT)/emb.h5 $(OUT)/clf.pt
	$(NRTOOL) classify $< --model $(OUT)/clf.pt --out $(OUT)/pred.h5 --split test --json --quiet > $@.tmp && mv $@.tmp $@

$(OUT)/retrieve.json: $(OUT)/emb.h5
	$(NRTOOL) retrieve $< --split test --gallery $< --gallery-split train --k 1 5 10 --json --quiet > $@.tmp && mv $@.tmp $@

$(OUT)/tsne.png: $(OUT)/emb.h5
	$(NRTOOL) plot tsne $< --out $@ --quiet

.PHONY: all
