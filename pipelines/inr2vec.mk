# inr2vec end to end, with the PointNet baseline beside it:
#   augment -> fit-inr -> train inr2vec -> encode -> train classifier -> classify -> retrieve -> t-SNE
#                      -> train pointnet -> classify-points
#
#   make -f pipelines/inr2vec.mk                      # PSB (15 train / 5 test per class), tiny preset
#   make -f pipelines/inr2vec.mk DATA=shapes/ OUT=run/ EPOCHS=5 CLF_EPOCHS=20   # a quick check
#
# Every stage is one nrtool command writing one artifact, so make reruns only what is missing,
# and an interrupted fit-inr resumes where it stopped. Test shapes are never augmented.
PRESET     ?= tiny
NRTOOL     ?= .venv/bin/nrtool
DATA       ?= ../shared/data/psb
OUT        ?= bench-out/inr2vec-$(PRESET)
AUG_COPIES ?= 2
EPOCHS     ?= 80
INR2VEC_ARGS ?=
CLF_EPOCHS ?= 60
PN_EPOCHS  ?= 40
DEVICE     ?= auto

all: $(OUT)/classify.json $(OUT)/retrieve.json $(OUT)/tsne.png $(OUT)/classify-points.json

# The augmented copies (a folder, so a stamp file marks it complete).
$(OUT)/aug.done:
	mkdir -p $(OUT)
	$(NRTOOL) augment $(DATA) --out $(OUT)/aug --copies $(AUG_COPIES) --overwrite --quiet
	touch $@

$(OUT)/inrs.h5: $(OUT)/aug.done
	$(NRTOOL) fit-inr $(DATA) $(OUT)/aug --out $@ --preset $(PRESET) --device $(DEVICE) --quiet

$(OUT)/inr2vec.pt: $(OUT)/inrs.h5
	$(NRTOOL) train inr2vec $< --out $@ --preset $(PRESET) --epochs $(EPOCHS) --device $(DEVICE) $(INR2VEC_ARGS) --quiet

$(OUT)/emb.h5: $(OUT)/inrs.h5 $(OUT)/inr2vec.pt
	$(NRTOOL) encode $< --model $(OUT)/inr2vec.pt --out $@ --device $(DEVICE) --quiet

$(OUT)/clf.pt: $(OUT)/emb.h5
	$(NRTOOL) train classifier $< --out $@ --preset $(PRESET) --epochs $(CLF_EPOCHS) --device $(DEVICE) --quiet

$(OUT)/classify.json: $(OUT)/emb.h5 $(OUT)/clf.pt
	$(NRTOOL) classify $< --model $(OUT)/clf.pt --out $(OUT)/pred.h5 --split test --json --quiet > $@.tmp && mv $@.tmp $@

$(OUT)/retrieve.json: $(OUT)/emb.h5
	$(NRTOOL) retrieve $< --split test --gallery $< --gallery-split train --k 1 5 10 --png $(OUT)/retrieve.png --json --quiet > $@.tmp && mv $@.tmp $@

$(OUT)/tsne.png: $(OUT)/emb.h5
	$(NRTOOL) plot tsne $< --out $@ --quiet

$(OUT)/pointnet.pt: $(OUT)/inrs.h5
	$(NRTOOL) train pointnet $< --out $@ --preset $(PRESET) --epochs $(PN_EPOCHS) --device $(DEVICE) --quiet

$(OUT)/classify-points.json: $(OUT)/inrs.h5 $(OUT)/pointnet.pt
	$(NRTOOL) classify-points $< --model $(OUT)/pointnet.pt --out $(OUT)/pred-points.h5 --split test --json --quiet > $@.tmp && mv $@.tmp $@

.PHONY: all
