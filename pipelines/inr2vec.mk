# inr2vec end to end, with ProbeGen, the raw weights and PointNet beside it on the same INRs:
#   augment -> fit-inr -> train inr2vec  -> encode ---------------> train classifier -> classify, retrieve, t-SNE
#                      -> train probegen -> encode --encoder probegen -> (the same heads)
#                      -> encode --encoder raw --------------------> (the same heads; plus a linear probe)
#                      -> train pointnet -> classify-points
#                      -> reconstruct --metrics (the INRs' own fidelity)
#   and `table` prints them side by side (bench/psb_table.py).
#
#   make -f pipelines/inr2vec.mk table                 # PSB (15 train / 5 test per class), tiny preset
#   make -f pipelines/inr2vec.mk table AUG_COPIES=0    # without augmented copies (285 training INRs; ~25 min on 2 cores)
#   make -f pipelines/inr2vec.mk DATA=shapes/ OUT=run/ EPOCHS=5 CLF_EPOCHS=20   # a quick check
#
# Every stage is one nrtool command writing one artifact, so make reruns only what is missing,
# and an interrupted fit-inr or training resumes where it stopped. Test shapes are never augmented.
PRESET     ?= tiny
NRTOOL     ?= .venv/bin/nrtool
PYTHON     ?= .venv/bin/python
DATA       ?= ../shared/data/psb
OUT        ?= bench-out/inr2vec-$(PRESET)
AUG_COPIES ?= 2
EPOCHS     ?= 80
INR2VEC_ARGS ?=
PROBEGEN_ARGS ?=
CLF_EPOCHS ?= 60
PN_EPOCHS  ?= 40
DEVICE     ?= auto
ENCODERS   := inr2vec probegen raw

# The per-encoder files are named here, not only reached through the short names: under
# .SECONDARY a file made by a pattern rule alone is intermediate, and make would skip a missing
# one whenever the short-named copy is newer than its inputs (an OUT left by an older version)
# (before the short names, so that those are then copied from the fresh files).
all: $(OUT)/emb-inr2vec.h5 $(OUT)/classify-inr2vec.json $(OUT)/retrieve-inr2vec.json $(OUT)/tsne-inr2vec.png \
     $(OUT)/classify.json $(OUT)/retrieve.json $(OUT)/tsne.png $(OUT)/classify-points.json \
     $(OUT)/classify-probegen.json $(OUT)/retrieve-probegen.json

table: $(foreach e,$(ENCODERS),$(OUT)/classify-$(e).json $(OUT)/retrieve-$(e).json) $(OUT)/classify-points.json $(OUT)/fidelity.json
	$(PYTHON) bench/psb_table.py $(OUT)

# The augmented copies (a folder, so a stamp file marks it complete); none with AUG_COPIES=0.
$(OUT)/aug.done:
	mkdir -p $(OUT)
	$(if $(filter 0,$(AUG_COPIES)),,$(NRTOOL) augment $(DATA) --out $(OUT)/aug --copies $(AUG_COPIES) --overwrite --quiet)
	touch $@

$(OUT)/inrs.h5: $(OUT)/aug.done
	$(NRTOOL) fit-inr $(DATA) $(if $(filter 0,$(AUG_COPIES)),,$(OUT)/aug) --out $@ --preset $(PRESET) --device $(DEVICE) --json --quiet > $(OUT)/fit.json.tmp && mv $(OUT)/fit.json.tmp $(OUT)/fit.json

# ---- encoders: each writes emb-NAME.h5
$(OUT)/inr2vec.pt: $(OUT)/inrs.h5
	$(NRTOOL) train inr2vec $< --out $@ --preset $(PRESET) --epochs $(EPOCHS) --device $(DEVICE) $(INR2VEC_ARGS) --json --quiet > $@.json.tmp && mv $@.json.tmp $@.json

$(OUT)/emb-inr2vec.h5: $(OUT)/inrs.h5 $(OUT)/inr2vec.pt
	$(NRTOOL) encode $< --model $(OUT)/inr2vec.pt --out $@ --device $(DEVICE) --quiet

$(OUT)/probegen.pt: $(OUT)/inrs.h5
	$(NRTOOL) train probegen $< --out $@ --preset $(PRESET) --device $(DEVICE) $(PROBEGEN_ARGS) --json --quiet > $@.json.tmp && mv $@.json.tmp $@.json

$(OUT)/emb-probegen.h5: $(OUT)/inrs.h5 $(OUT)/probegen.pt
	$(NRTOOL) encode $< --encoder probegen --model $(OUT)/probegen.pt --out $@ --device $(DEVICE) --quiet

$(OUT)/emb-raw.h5: $(OUT)/inrs.h5
	$(NRTOOL) encode $< --encoder raw --out $@ --quiet

# ---- the same heads on every encoder's embeddings
$(OUT)/clf-%.pt: $(OUT)/emb-%.h5
	$(NRTOOL) train classifier $< --out $@ --preset $(PRESET) --epochs $(CLF_EPOCHS) --device $(DEVICE) --quiet

$(OUT)/classify-%.json: $(OUT)/emb-%.h5 $(OUT)/clf-%.pt
	$(NRTOOL) classify $< --model $(OUT)/clf-$*.pt --out $(OUT)/pred-$*.h5 --split test --json --quiet > $@.tmp && mv $@.tmp $@

$(OUT)/retrieve-%.json: $(OUT)/emb-%.h5
	$(NRTOOL) retrieve $< --split test --gallery $< --gallery-split train --k 1 5 10 --png $(OUT)/retrieve-$*.png --json --quiet > $@.tmp && mv $@.tmp $@

$(OUT)/tsne-%.png: $(OUT)/emb-%.h5
	$(NRTOOL) plot tsne $< --out $@ --quiet

# The inr2vec chain's results under their short names (what `make demo` reads).
$(OUT)/classify.json: $(OUT)/classify-inr2vec.json
	cp $< $@
$(OUT)/retrieve.json: $(OUT)/retrieve-inr2vec.json
	cp $< $@
$(OUT)/tsne.png: $(OUT)/tsne-inr2vec.png
	cp $< $@

# ---- PointNet on points reconstructed from the same INRs
$(OUT)/pointnet.pt: $(OUT)/inrs.h5
	$(NRTOOL) train pointnet $< --out $@ --preset $(PRESET) --epochs $(PN_EPOCHS) --device $(DEVICE) --quiet

$(OUT)/classify-points.json: $(OUT)/inrs.h5 $(OUT)/pointnet.pt
	$(NRTOOL) classify-points $< --model $(OUT)/pointnet.pt --out $(OUT)/pred-points.h5 --split test --json --quiet > $@.tmp && mv $@.tmp $@

# ---- the INRs' own fidelity on the test split (thesis Tab. 5.4's measure)
$(OUT)/fidelity.json: $(OUT)/inrs.h5
	$(NRTOOL) reconstruct $< --out $(OUT)/recon --split test --metrics --normalised --device $(DEVICE) --json --quiet > $@.tmp && mv $@.tmp $@

.PHONY: all table
.SECONDARY:
