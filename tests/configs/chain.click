src :: TstSrc -> TstPass -> p :: TstPass(PARAM 1) -> TstSink
