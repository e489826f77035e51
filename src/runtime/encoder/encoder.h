// The encoder fast path in one include: recognize_encoder() (recognize_encoder.h) decides whether a
// graph is a BERT-family encoder and extracts its weights; FastEncoder (fast_encoder.h) runs it on
// packed batches with an exactly planned arena (memory_plan.h). See README.md in this folder.
#pragma once

#include "runtime/encoder/encoder_weights.h"
#include "runtime/encoder/fast_encoder.h"
#include "runtime/encoder/memory_plan.h"
#include "runtime/encoder/recognize_encoder.h"
